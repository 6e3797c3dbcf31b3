//! The distributed mode against real services: RabbitMQ (the machine's broker, or a private node
//! for the restart test), an S3 server (SeaweedFS) and `worker` / `coordinator` processes.

mod faults;
mod parity;
mod storage;

use std::path::PathBuf;
use std::time::Duration;

use tests::seaweed::S3Server;
use tests::services::{Process, TcpProxy, binary};

/// A farm under test: its temp folder, S3 server, bucket and config file.
pub struct Farm {
    /// The archive rows a correct build publishes (`name<TAB>bytes<TAB>sha256`).
    pub expected: String,
    /// How many archives that is.
    pub archives: usize,
    pub temp: tempfile::TempDir,
    pub s3: S3Server,
    /// In front of S3 when asked for: every client (workers, coordinator) goes through it.
    pub proxy: Option<TcpProxy>,
    pub bucket: String,
    pub config: PathBuf,
    pub upstream_base: PathBuf,
    /// The queue prefix of this farm.
    pub prefix: String,
    /// The broker it uses.
    pub amqp_url: String,
}

/// Variations of the test farm.
#[derive(Default)]
pub struct Options<'a> {
    /// Put a [`TcpProxy`] between everyone and S3.
    pub proxy: bool,
    /// Extra lines for `[queue]`.
    pub queue: &'a str,
    /// Extra TOML placed before `[queue]` (e.g. another `[[upstreams]]`).
    pub upstreams: &'a str,
}

/// A generated upstream of 1,037 small archives (100 modules, 37 tags), enough for faults to hit
/// a build in the middle.
pub const THOUSAND: tests::generated::Shape =
    tests::generated::Shape { modules: 100, files: 4, tags: 37, base_files: 20, change_every: 4, binary_every: 0 };

impl Farm {
    /// The parity fixture's upstream and config against a broker URL.
    pub fn parity(label: &str, amqp_url: &str, options: Options<'_>) -> Farm {
        let temp = tempfile::tempdir().unwrap();
        let upstream_base = tests::restore_parity_upstream(&temp.path().join("upstream"));
        let base = temp.path().join("base.toml");
        let parity = std::fs::read_to_string(tests::fixture("parity.toml")).unwrap();
        std::fs::write(&base, format!("{parity}\n{}\n", options.upstreams)).unwrap();
        let expected = tests::expected_parity_rows();
        Farm::with_upstream(temp, upstream_base, &base, expected, label, amqp_url, options)
    }

    /// A generated upstream of `shape` against a broker URL; what a correct build publishes is
    /// what an embedded build of the same upstream into a local folder makes.
    pub fn generated(shape: tests::generated::Shape, label: &str, amqp_url: &str, options: Options<'_>) -> Farm {
        let temp = tempfile::tempdir().unwrap();
        let upstream_base = temp.path().join("upstream");
        let generated = tests::generated::generate(&upstream_base.join("mirror-magento2.git"), shape);
        drop(generated.upstream);
        let base = temp.path().join("base.toml");
        std::fs::write(&base, format!("{}\n{}\n", tests::generated::CONFIG, options.upstreams)).unwrap();
        let config = tests::load_config(&base, &upstream_base, &temp.path().join("cache-embedded"), 2);
        let out = temp.path().join("embedded");
        let report = tokio::runtime::Runtime::new().unwrap().block_on(tests::build(config, &out));
        assert!(report.failed.is_empty(), "{}", report.summary());
        assert_eq!(report.built.len(), generated.archives, "generator and build disagree");
        let expected = tests::archive_rows(&out.join("packages"));
        std::fs::remove_dir_all(&out).unwrap();
        Farm::with_upstream(temp, upstream_base, &base, expected, label, amqp_url, options)
    }

    fn with_upstream(
        temp: tempfile::TempDir,
        upstream_base: PathBuf,
        base: &std::path::Path,
        expected: String,
        label: &str,
        amqp_url: &str,
        options: Options<'_>,
    ) -> Farm {
        let s3 = S3Server::start();
        let bucket = "composer".to_owned();
        s3.create_public_bucket(&bucket);
        let proxy = options.proxy.then(|| TcpProxy::start(s3.port));
        let endpoint = match &proxy {
            Some(proxy) => format!("http://127.0.0.1:{}", proxy.port),
            None => s3.endpoint(),
        };
        let prefix = tests::services::unique_prefix(label);
        let text = tests::distributed_config(base, amqp_url, &prefix, &endpoint, &bucket, options.queue);
        let config = temp.path().join("farm.toml");
        std::fs::write(&config, text).unwrap();
        let archives = expected.lines().count();
        Farm {
            expected,
            archives,
            temp,
            s3,
            proxy,
            bucket,
            config,
            upstream_base,
            prefix,
            amqp_url: amqp_url.to_owned(),
        }
    }

    /// Starts a `worker` process with its own cache folder.
    pub fn worker(&self, name: &str, concurrency: usize) -> Process {
        self.worker_with(name, concurrency, &[])
    }

    /// [`Farm::worker`] with extra environment (e.g. `FARM_STORAGE__ENDPOINT`).
    pub fn worker_with(&self, name: &str, concurrency: usize, env: &[(&str, String)]) -> Process {
        let cache = self.temp.path().join(format!("cache-{name}"));
        let mut all = vec![
            ("FARM_BUILD__CACHE_DIR", cache.display().to_string()),
            ("FARM_BUILD__WORKERS", concurrency.to_string()),
        ];
        all.extend(env.iter().cloned());
        Process::spawn(name, &binary("worker"), &["--config", self.config.to_str().unwrap()], &all)
    }

    /// Starts `coordinator build`.
    pub fn coordinator(&self) -> Process {
        self.coordinator_with(&[])
    }

    /// [`Farm::coordinator`] with extra environment (e.g. `FARM_STORAGE__ENDPOINT`).
    pub fn coordinator_with(&self, env: &[(&str, String)]) -> Process {
        let cache = self.temp.path().join("cache-coordinator");
        Process::spawn(
            "coordinator",
            &binary("coordinator"),
            &[
                "build",
                "--config",
                self.config.to_str().unwrap(),
                "--upstream-base",
                self.upstream_base.to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
            ],
            env,
        )
    }

    /// `coordinator verify`; returns the exit code and the output.
    pub fn verify(&self) -> (i32, Vec<String>) {
        let mut process = Process::spawn(
            "verify",
            &binary("coordinator"),
            &["verify", "--config", self.config.to_str().unwrap()],
            &[],
        );
        let code = process.wait(Duration::from_secs(120));
        (code, process.lines())
    }

    /// The bucket's archives as `name<TAB>bytes<TAB>sha256` rows.
    pub fn archive_rows(&self) -> String {
        tests::object_rows(&self.s3.objects(&self.bucket))
    }

    /// The public URL of the repository.
    pub fn base_url(&self) -> String {
        format!("{}/{}", self.s3.endpoint(), self.bucket)
    }

    /// A folder in the farm's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }
}

/// The report the coordinator stored in the bucket.
pub fn stored_report(farm: &Farm) -> serde_json::Value {
    let objects = farm.s3.objects(&farm.bucket);
    serde_json::from_slice(objects.get(".farm/report.json").expect("report stored")).unwrap()
}

/// Asserts the composer client installs `package` from the bucket over HTTP.
pub fn composer_installs(farm: &Farm, package: &str, version: &str) {
    let project = farm.path("consumer");
    tests::composer_project(&project, &farm.base_url(), &[(package, version)]);
    // The parity packages need psr/log and ext-intl, which this offline repository does not
    // serve: the consumer project declares them provided.
    let path = project.join("composer.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["provide"] = serde_json::json!({"psr/log": "1.1.4"});
    manifest["config"]["platform"] = serde_json::json!({"ext-intl": "1.0.0", "php": "8.1.0"});
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let output = tests::composer(&project, &["install"]);
    assert!(
        output.status.success(),
        "composer install failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let vendor = project.join("vendor").join(package);
    assert!(vendor.join("composer.json").is_file(), "{} not installed", vendor.display());
}

/// Waits for a process and asserts its exit code.
pub fn expect_exit(process: &mut Process, code: i32, limit: Duration) {
    let actual = process.wait(limit);
    assert_eq!(actual, code, "unexpected exit code");
}

impl Drop for Farm {
    /// Removes this farm's queues and exchange from the broker.
    fn drop(&mut self) {
        tests::services::delete_topology(&self.amqp_url, &self.prefix);
    }
}
