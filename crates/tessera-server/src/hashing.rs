//! Where Argon2 runs: a few threads of their own, each keeping to a share of
//! a CPU at a lower scheduling priority, behind a bounded queue.
//!
//! One verification costs about 20 ms of CPU. On the async workers, a login
//! flood of ~100/s stalled every check those workers held (p50 0.14 ms →
//! 47 ms). Here:
//! * the work never runs on an async worker: a job goes to one of
//!   `workers` threads and the request waits for its answer;
//! * the queue holds at most `queue` jobs; past that a login is answered
//!   "busy, retry" (503 with `Retry-After`) at once, never queued without
//!   bound; a job that waited longer than [`MAX_WAIT`], or whose request has
//!   gone away, is dropped unhashed;
//! * each thread uses at most `share` percent of one CPU: after a hash that
//!   took `d` it rests `d × (100 − share) / share`. Measured under a flood,
//!   a lower scheduling priority alone did not protect the checks: the
//!   scheduler hands an idle moment of a CPU to the hashing thread (nice 19
//!   and even SCHED_IDLE still took a third of a CPU), and Argon2's 19 MiB
//!   of memory traffic slows the threads beside it wherever it runs. A
//!   bounded share is a bound on what a flood can take;
//! * the threads also run at nice [`NICENESS`] (Linux: per thread), so that
//!   within their share the checks still come first.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::secret::password::{self, PasswordHash, PasswordWork, WorkError};
use tokio::sync::oneshot;

/// A job waiting longer than this is answered "busy" without hashing: its
/// client has likely given up, and hashing it would only delay the next.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// How much lower than the rest of the process the hashing threads run
/// (`nice` 10: about a tenth of a normal thread's share when CPUs are
/// contended).
pub const NICENESS: i32 = 10;

enum Task {
    Hash(String),
    Verify(String, PasswordHash),
}

enum Done {
    Hashed(Result<PasswordHash, WorkError>),
    Verified(bool),
    Busy,
}

struct Job {
    task: Task,
    queued: Instant,
    reply: oneshot::Sender<Done>,
}

/// The default share of one CPU each hashing thread may use, in percent:
/// about 12 verifications a second per thread at ~20 ms each.
pub const DEFAULT_SHARE: u32 = 25;

/// How long a thread that spent `busy` hashing rests, to keep to `share`
/// percent of one CPU (1 to 100; 100: no rest).
pub fn rest_after(busy: Duration, share: u32) -> Duration {
    let share = share.clamp(1, 100);
    busy * (100 - share) / share
}

/// The pool; cheap to share. Threads end when the pool is dropped.
#[derive(Debug)]
pub struct HashPool {
    jobs: SyncSender<Job>,
    /// Kept here too, so that the queue stays open whatever the threads do.
    _queue: Arc<Mutex<Receiver<Job>>>,
    workers: usize,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job(<redacted>)")
    }
}

impl HashPool {
    /// `workers` threads (at least one), each using at most `share`
    /// percent of one CPU, behind a queue of `queue` jobs.
    pub fn new(workers: usize, queue: usize, share: u32) -> std::io::Result<Self> {
        Self::start(workers.max(1), queue, share)
    }

    fn start(workers: usize, queue: usize, share: u32) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || work(&rx, share))?;
        }
        Ok(HashPool {
            jobs,
            _queue: rx,
            workers,
        })
    }

    /// The default size on this machine: half the CPUs (at least one), each
    /// with 16 places in the queue.
    pub fn default_size() -> (usize, usize) {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = (cpus / 2).max(1);
        (workers, workers * 16)
    }

    /// Threads in the pool.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `task`, or refuses at once when the queue is full.
    fn submit(&self, task: Task) -> Result<oneshot::Receiver<Done>, WorkError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            task,
            queued: Instant::now(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(WorkError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(WorkError::Failed),
        }
    }

    async fn run(&self, task: Task) -> Result<Done, WorkError> {
        match self.submit(task)?.await {
            Ok(Done::Busy) => Err(WorkError::Busy),
            Ok(done) => Ok(done),
            Err(_) => Err(WorkError::Failed),
        }
    }
}

#[async_trait::async_trait]
impl PasswordWork for HashPool {
    async fn hash(&self, password: String) -> Result<PasswordHash, WorkError> {
        match self.run(Task::Hash(password)).await? {
            Done::Hashed(r) => r,
            _ => Err(WorkError::Failed),
        }
    }

    async fn verify(&self, password: String, stored: PasswordHash) -> Result<bool, WorkError> {
        match self.run(Task::Verify(password, stored)).await? {
            Done::Verified(ok) => Ok(ok),
            _ => Err(WorkError::Failed),
        }
    }
}

/// A worker thread: takes jobs until the pool is gone, resting after each
/// to keep to its `share` of a CPU.
fn work(rx: &Mutex<Receiver<Job>>, share: u32) {
    lower_priority();
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if job.reply.is_closed() {
            continue;
        }
        if job.queued.elapsed() > MAX_WAIT {
            let _ = job.reply.send(Done::Busy);
            continue;
        }
        let started = Instant::now();
        let done = match job.task {
            Task::Hash(pw) => Done::Hashed(password::hash(&pw).map_err(|_| WorkError::Failed)),
            Task::Verify(pw, stored) => Done::Verified(password::verify(&pw, &stored)),
        };
        let busy = started.elapsed();
        let _ = job.reply.send(done);
        std::thread::sleep(rest_after(busy, share));
    }
}

/// Lowers this thread's scheduling priority by [`NICENESS`] (Linux applies
/// `setpriority` to the one thread). Best effort: elsewhere, or refused,
/// the thread runs at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(tid), now + NICENESS) {
            tracing::warn!(error = %e, "cannot lower the priority of a hashing thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies_off_the_caller() {
        let pool = HashPool::new(1, 4, 100).unwrap();
        let h = pool.hash("pw".into()).await.unwrap();
        assert!(pool.verify("pw".into(), h.clone()).await.unwrap());
        assert!(!pool.verify("nope".into(), h).await.unwrap());
    }

    #[test]
    fn a_full_queue_answers_busy_at_once() {
        // No thread takes jobs: the queue's two places fill, the third is refused.
        let pool = HashPool::start(0, 2, DEFAULT_SHARE).unwrap();
        let job = || Task::Hash("pw".into());
        let _a = pool.submit(job()).unwrap();
        let _b = pool.submit(job()).unwrap();
        assert!(matches!(pool.submit(job()), Err(WorkError::Busy)));
    }

    #[test]
    fn a_thread_rests_to_keep_to_its_share() {
        let ms = Duration::from_millis;
        assert_eq!(rest_after(ms(20), 25), ms(60));
        assert_eq!(rest_after(ms(20), 50), ms(20));
        assert_eq!(rest_after(ms(20), 100), Duration::ZERO);
        assert_eq!(rest_after(ms(20), 0), ms(1980), "at least 1 %");
        assert_eq!(rest_after(ms(20), 250), Duration::ZERO, "at most 100 %");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_threads_run_at_a_lower_priority() {
        let (tx, rx) = std::sync::mpsc::channel();
        let base = rustix::process::getpriority_process(None).unwrap();
        std::thread::spawn(move || {
            lower_priority();
            let tid = rustix::thread::gettid();
            tx.send(rustix::process::getpriority_process(Some(tid)).unwrap())
                .unwrap();
        });
        assert_eq!(rx.recv().unwrap(), (base + NICENESS).min(19));
    }
}
