//! Where build triggers go: one channel per upstream, from the webhooks and the trigger endpoint
//! ([`crate::http`]), the pollers and the startup catch-up ([`crate::serve`]) to that upstream's
//! scheduler. Both sides import this module; neither imports the other for it.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::metrics::{Metrics, UpstreamLabel};

/// Triggers an upstream's channel holds before a new one is dropped: a full channel means a build
/// is already due, and one more trigger would not change what it builds.
const WAITING_TRIGGERS: usize = 64;

/// Where triggers of each upstream go. Sending never blocks.
#[derive(Clone)]
pub struct Triggers {
    senders: Arc<HashMap<String, mpsc::Sender<String>>>,
    metrics: Arc<Metrics>,
}

/// The receiving end of one upstream's triggers, for its scheduler.
pub type TriggerReceiver = mpsc::Receiver<String>;

impl Triggers {
    /// A channel for each upstream key; returns the receivers in the order of `upstreams`.
    pub fn new(
        upstreams: impl IntoIterator<Item = String>,
        metrics: Arc<Metrics>,
    ) -> (Triggers, Vec<(String, TriggerReceiver)>) {
        let mut senders = HashMap::new();
        let mut receivers = Vec::new();
        for upstream in upstreams {
            let (sender, receiver) = mpsc::channel(WAITING_TRIGGERS);
            senders.insert(upstream.clone(), sender);
            receivers.push((upstream, receiver));
        }
        (Triggers { senders: Arc::new(senders), metrics }, receivers)
    }

    /// Asks for a build of the upstream; `why` ends up in the status and the build report. A
    /// trigger the channel took is counted in `farm_triggers_total` before this returns.
    pub fn send(&self, upstream: &str, why: &str) {
        if let Some(sender) = self.senders.get(upstream)
            && sender.try_send(why.to_owned()).is_ok()
        {
            self.metrics.triggers.get_or_create(&UpstreamLabel { upstream: upstream.to_owned() }).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_reach_their_upstream_and_are_counted() {
        let metrics = Arc::new(Metrics::new());
        let (triggers, mut receivers) = Triggers::new(["a".to_owned(), "b".to_owned()], Arc::clone(&metrics));
        triggers.send("b", "poll");
        triggers.send("nonexistent", "poll");
        let (_, b) = &mut receivers[1];
        assert_eq!(b.try_recv().unwrap(), "poll");
        assert!(receivers[0].1.try_recv().is_err());
        let text = metrics.encode();
        assert!(text.contains("farm_triggers_total{upstream=\"b\"} 1"), "{text}");
        assert!(!text.contains("upstream=\"a\""), "{text}");
    }

    #[test]
    fn a_full_channel_drops_the_trigger_uncounted() {
        let metrics = Arc::new(Metrics::new());
        let (triggers, _receivers) = Triggers::new(["a".to_owned()], Arc::clone(&metrics));
        for _ in 0..WAITING_TRIGGERS + 5 {
            triggers.send("a", "burst");
        }
        let text = metrics.encode();
        assert!(text.contains(&format!("farm_triggers_total{{upstream=\"a\"}} {WAITING_TRIGGERS}")), "{text}");
    }
}
