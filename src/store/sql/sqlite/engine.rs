//! The SQLite engine: one writer thread that commits in groups, and reader threads.
//!
//! Every call becomes a job on a queue; the async caller waits on a oneshot channel and
//! the runtime's threads never block on SQLite.
//!
//! * **Writer.** One thread owns the read-write connection. It takes the first waiting
//!   job, then every job queued behind it (at most [`MAX_BATCH`]), and runs them in one
//!   `BEGIN IMMEDIATE … COMMIT`; a job of several statements runs inside its own
//!   `SAVEPOINT`, so one job's failure undoes only its own writes (a single statement is
//!   atomic by itself and needs none: a savepoint copies every page it touches into its
//!   journal, which was a third of the writer's time for client-credentials tokens). Answers are sent **after** the `COMMIT` returned: a
//!   job's result is its own when the commit succeeded, the commit's error otherwise.
//!   Nothing is delayed to wait for company — the batch is whatever queued while the
//!   previous commit ran, so one client pays one commit and many clients share one.
//! * **Recovery.** After any failed statement SQLite may have ended the transaction
//!   (disk full, I/O error) or not; the writer checks `is_autocommit`, rolls back what is
//!   left, and if the connection is still inside a transaction (or its `ROLLBACK` failed)
//!   it is closed and reopened. The next batch starts clean, so the store recovers by
//!   itself once the cause (a full disk, a lock held by another process) is gone.
//! * **Readers.** `readers` threads, each with a read-only connection, share one queue:
//!   lookups never wait for the writer (WAL).
//!
//! Statements are prepared once per connection and kept (`prepare_cached`).

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::error::{closed, sqlite_err};
use crate::store::{StoreError, StoreResult};

/// The most jobs one transaction carries.
pub(crate) const MAX_BATCH: usize = 512;

/// Where the database is and how its connections are set up.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// A file path, or a shared in-memory URI (`file:…?mode=memory&cache=shared`).
    pub(crate) path: PathBuf,
    pub(crate) memory: bool,
    pub(crate) busy_timeout: Duration,
    /// The writer's page cache, KiB (each reader gets a quarter).
    pub(crate) cache_kib: i64,
    /// Create the file when it does not exist.
    pub(crate) create: bool,
}

impl Target {
    fn open(&self, read_only: bool) -> rusqlite::Result<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        if read_only {
            flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
        } else {
            flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
            if self.create {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
        }
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(128);
        if !self.memory && !read_only {
            // WAL: readers never block the writer nor it them. A no-op when already set.
            let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        }
        let cache_kib = if read_only {
            self.cache_kib / 4
        } else {
            self.cache_kib
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{cache_kib};"
        ))?;
        Ok(conn)
    }
}

/// A job for a reader (or, for an in-memory database, the writer).
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// How a job touches the database.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Reads only.
    Nothing,
    /// One statement: atomic by itself (SQLite undoes a failed statement and the
    /// transaction goes on), so no savepoint is needed.
    OneStatement,
    /// Several statements: they run inside a savepoint, undone together on failure.
    Statements,
}

/// A job of a write batch: runs inside the batch's transaction and returns what to do
/// once the transaction's fate is known.
trait WriteJob: Send {
    /// Runs the job's statements; `Err` means its writes must be undone.
    fn run(&mut self, conn: &Connection) -> Result<(), ()>;
    /// How it writes.
    fn writes(&self) -> Writes;
    /// Sends the answer: the job's result if `commit` is `Ok`, else the commit's error.
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct Job<F, T> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    writes: Writes,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), ()> {
        let work = self.work.take().expect("a job runs once");
        let result = work(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        if ok {
            Ok(())
        } else {
            Err(())
        }
    }

    fn writes(&self) -> Writes {
        self.writes
    }

    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let result = match (commit, self.result) {
            // A job whose own statements failed wrote nothing: its error stands.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(ok)) => ok,
            (Err(e), _) => Err(sqlite_err(e)),
            (Ok(()), None) => Err(StoreError::Unavailable(
                "the write was not run: its transaction failed".into(),
            )),
        };
        let _ = self.reply.send(result);
    }
}

enum WriterMsg {
    Job(Box<dyn WriteJob>),
    Stop(oneshot::Sender<()>),
}

enum ReaderMsg {
    Job(ReadJob),
    Stop(oneshot::Sender<()>),
}

/// The running engine. Dropping it lets the threads finish their queues and exit.
#[derive(Debug)]
pub(crate) struct Engine {
    writer: crossbeam_channel::Sender<WriterMsg>,
    /// `None` for an in-memory database: reads go through the writer's connection.
    readers: Option<(crossbeam_channel::Sender<ReaderMsg>, usize)>,
}

impl std::fmt::Debug for WriterMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterMsg")
    }
}

impl std::fmt::Debug for ReaderMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderMsg")
    }
}

impl Engine {
    /// Opens the writer (creating the file) and `readers` reader connections, each on its
    /// own thread.
    pub(crate) fn start(target: Target, readers: usize) -> StoreResult<Engine> {
        let conn = target
            .open(false)
            .map_err(|e| StoreError::Config(format!("{}: {e}", target.path.display())))?;
        let (wtx, wrx) = crossbeam_channel::unbounded::<WriterMsg>();
        let writer_target = target.clone();
        std::thread::Builder::new()
            .name("oauth-sqlite-writer".into())
            .spawn(move || writer_loop(conn, writer_target, wrx))
            .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer: {e}")))?;
        let readers = if target.memory {
            None
        } else {
            let (rtx, rrx) = crossbeam_channel::unbounded::<ReaderMsg>();
            let n = readers.max(1);
            for i in 0..n {
                let conn = target
                    .open(true)
                    .map_err(|e| StoreError::Config(format!("{}: {e}", target.path.display())))?;
                let rrx = rrx.clone();
                let t = target.clone();
                std::thread::Builder::new()
                    .name(format!("oauth-sqlite-reader-{i}"))
                    .spawn(move || reader_loop(conn, t, rrx))
                    .map_err(|e| {
                        StoreError::Config(format!("cannot start an SQLite reader: {e}"))
                    })?;
            }
            Some((rtx, n))
        };
        Ok(Engine {
            writer: wtx,
            readers,
        })
    }

    /// Runs `work` (several statements) in the writer's next transaction, inside a
    /// savepoint of its own; answers after the commit.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(work, Writes::Statements).await
    }

    /// Runs `work`, which must execute exactly one writing statement, in the writer's next
    /// transaction without a savepoint (a savepoint copies every page it touches into
    /// its journal); answers after the commit.
    pub(crate) async fn write_one<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(work, Writes::OneStatement).await
    }

    /// Runs a read on the writer's connection (for reads that decide a write and must
    /// see the latest commit, as the single-use checks do).
    pub(crate) async fn read_latest<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(work, Writes::Nothing).await
    }

    async fn submit<T, F>(&self, work: F, writes: Writes) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Some(work),
            result: None,
            reply,
            writes,
        };
        self.writer
            .send(WriterMsg::Job(Box::new(job)))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a read on a reader connection.
    pub(crate) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some((readers, _)) = &self.readers else {
            return self.read_latest(work).await;
        };
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        readers.send(ReaderMsg::Job(job)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stops every thread after the jobs already queued.
    pub(crate) async fn close(&self) {
        let mut waits = Vec::new();
        if let Some((readers, n)) = &self.readers {
            for _ in 0..*n {
                let (tx, rx) = oneshot::channel();
                if readers.send(ReaderMsg::Stop(tx)).is_ok() {
                    waits.push(rx);
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        if self.writer.send(WriterMsg::Stop(tx)).is_ok() {
            waits.push(rx);
        }
        for w in waits {
            let _ = w.await;
        }
    }
}

fn reader_loop(mut conn: Connection, target: Target, rx: crossbeam_channel::Receiver<ReaderMsg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            ReaderMsg::Job(job) => {
                // A panicking job drops its reply (the caller gets an error); the thread
                // and its connection carry on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
                // A reader is in autocommit between jobs; if a job left a statement or a
                // transaction open (it should not), start over on a fresh connection.
                if !conn.is_autocommit() {
                    if let Ok(fresh) = target.open(true) {
                        conn = fresh;
                    }
                }
            }
            ReaderMsg::Stop(done) => {
                let _ = done.send(());
                return;
            }
        }
    }
}

fn writer_loop(mut conn: Connection, target: Target, rx: crossbeam_channel::Receiver<WriterMsg>) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(64);
    let mut stop = None;
    while stop.is_none() {
        match rx.recv() {
            Ok(WriterMsg::Job(job)) => batch.push(job),
            Ok(WriterMsg::Stop(done)) => {
                stop = Some(done);
                continue;
            }
            Err(_) => return,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(WriterMsg::Job(job)) => batch.push(job),
                Ok(WriterMsg::Stop(done)) => {
                    stop = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &target, &mut batch);
    }
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Runs one batch in one transaction and answers every job in it.
fn run_batch(conn: &mut Connection, target: &Target, batch: &mut Vec<Box<dyn WriteJob>>) {
    let outcome = run_in_transaction(conn, batch);
    if outcome.is_err() {
        recover(conn, target);
    }
    let commit = outcome.as_ref().map(|_| ());
    for job in batch.drain(..) {
        job.finish(commit);
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_in_transaction(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> rusqlite::Result<()> {
    exec(conn, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let savepoint = job.writes() == Writes::Statements;
        if savepoint {
            exec(conn, "SAVEPOINT job")?;
        }
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn)))
            .is_ok_and(|r| r.is_ok());
        if conn.is_autocommit() {
            // The failure ended the whole transaction (SQLITE_FULL, an I/O error): what
            // the batch wrote so far is gone, so no job of it may report success.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back by a failed statement".into()),
            ));
        }
        if savepoint {
            if !ok {
                exec(conn, "ROLLBACK TO job")?;
            }
            exec(conn, "RELEASE job")?;
        }
    }
    exec(conn, "COMMIT")
}

/// Leaves the writer outside any transaction, on a fresh connection if need be.
fn recover(conn: &mut Connection, target: &Target) {
    if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
        tracing::warn!("SQLite writer: ROLLBACK failed; reopening the connection");
    }
    if conn.is_autocommit() {
        return;
    }
    match target.open(false) {
        Ok(fresh) => *conn = fresh,
        Err(e) => tracing::error!(error = %e, "SQLite writer: cannot reopen the connection"),
    }
}
