//! The PostgreSQL backend: the same ordered byte map as RocksDB's, in one `kv` table, so the
//! key layout, the versioned records and their checks are shared (`kv.rs`); one transaction
//! per commit, fenced by the leader's epoch.
//!
//! # Durability
//!
//! A commit returns `Ok` once PostgreSQL's `COMMIT` did: the commit connection sets
//! `synchronous_commit = on` itself (whatever the role says), so that is after its WAL was
//! flushed, and flushed by the synchronous standby when `synchronous_standby_names` names one
//! (the store warns whenever its commit connection finds none — at the first commit, and
//! after a promotion that left the new primary without a standby: then one disk holds the
//! data, as with RocksDB).
//! A commit never gets a statement timeout or a cancel from this client (a cancel during the
//! wait for the standby turns a commit that is not replicated into a success, with only a
//! warning): any notice the server sends during a commit (such a warning, in whatever
//! language) fails it, outcome unknown. A commit that gets no answer within its deadline is
//! reported failed, outcome unknown, and its server session is terminated (so it can neither
//! hold the fence row nor pile up connections while the standby is away).
//!
//! # Fencing
//!
//! The store holds an epoch ([`PgStore::take_over`]). Every batch's transaction first locks the
//! `leader` row and checks that its epoch is still this one (`farthing_fence`, the same round
//! trip as the writes): if another instance took the store over, the batch rolls back and the
//! commit fails with [`StoreError::Fenced`], nothing written. A takeover waits for the batch
//! in flight (the row lock), so once it returns no batch of the old epoch can commit.
//!
//! # Threads
//!
//! The client is async; the [`Store`] is not. The store runs its own small tokio runtime and
//! each call hands it a future and waits on a plain channel — so it can be called from any
//! thread, async code included, like RocksDB. Commits go through one connection, reads through
//! a small pool.

mod commit;
mod conn;
mod plan;
mod sql;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::{Config, NoTls};

use crate::kv::{self, Kv, Op, Step, Visit};
use crate::{Result, StoreError};
use commit::{END_SESSION, apply, end_session};
use conn::{Conn, Role, connect, describe, error_text, pg_error, valid_schema};

/// How long a commit may take before the connection is dropped and the commit reported
/// failed (outcome unknown): a PostgreSQL that is gone, or a synchronous standby that is down
/// (every commit waits for it).
pub const COMMIT_DEADLINE: Duration = Duration::from_secs(10);

/// How long a read may take.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// Entries per page of a walk.
const PAGE: i64 = 64;

/// Read connections kept for reuse.
const POOL: usize = 4;

/// The node's store in PostgreSQL, implementing [`Store`].
pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    config: Config,
    schema: String,
    target: String,
    /// The commit connection, connected on first use and again after a failure.
    committer: Arc<tokio::sync::Mutex<Option<Conn>>>,
    readers: Mutex<Vec<Arc<Conn>>>,
    /// The epoch this instance holds the store with; 0 until [`PgStore::take_over`].
    epoch: AtomicU64,
    /// The name this instance took the store over under.
    holder: Mutex<String>,
    closed: AtomicBool,
    commit_deadline: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

impl PgStore {
    /// Connect to the database `url` names (a libpq connection string or URL; several hosts
    /// with `target_session_attrs=read-write` find the primary after a failover), create the
    /// tables in `schema` if they are missing, and check the record schema like
    /// [`RocksStore::open`](crate::RocksStore::open) (raised, if older, at the takeover). The
    /// store commits nothing until it [takes over](Self::take_over).
    pub fn open(url: &str, schema: &str) -> Result<Self> {
        let mut config: Config = url.parse().map_err(|e| StoreError::Postgres {
            target: "the configured database".into(),
            reason: format!("cannot read the connection string: {}", error_text(&e)),
        })?;
        if !valid_schema(schema) {
            return Err(StoreError::Postgres {
                target: describe(&config),
                reason: format!(
                    "`{schema}` is not a usable schema name: use lowercase letters, digits and \
                     `_`, starting with a letter, at most 48 characters"
                ),
            });
        }
        config
            .connect_timeout(Duration::from_secs(5))
            .keepalives_idle(Duration::from_secs(5))
            .tcp_user_timeout(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("farthing");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("farthing-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable {
                reason: format!("cannot start the PostgreSQL client's runtime: {e}"),
            })?;
        let store = Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            target: format!("{}#{schema}", describe(&config)),
            config,
            schema: schema.to_owned(),
            committer: Arc::default(),
            readers: Mutex::default(),
            epoch: AtomicU64::new(0),
            holder: Mutex::default(),
            closed: AtomicBool::new(false),
            commit_deadline: COMMIT_DEADLINE,
        };
        store.migrate()?;
        // Only checked here: the record is raised once this instance holds the store.
        kv::schema_is_current(&store, &store.target)?;
        Ok(store)
    }

    /// Give up on a commit after `deadline` instead of [`COMMIT_DEADLINE`] (the outcome is then
    /// unknown: the batch may be found whole later).
    pub fn with_commit_deadline(mut self, deadline: Duration) -> Self {
        self.commit_deadline = deadline;
        self
    }

    /// Where the store is, as an operator reads it: hosts, ports, database and schema (never
    /// a password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Take the store over with `epoch` (an election's revision), or with the next epoch when
    /// `None` (an instance without an election: the newest one started wins). Waits for the
    /// batch an earlier holder has in flight; afterwards no batch of an earlier epoch
    /// commits. Fails with [`StoreError::Fenced`] if a holder with an epoch not lower than
    /// `epoch` exists. Returns the epoch now held.
    pub fn take_over(&self, epoch: Option<u64>, holder: &str) -> Result<u64> {
        let (holder, name) = (holder.to_owned(), holder.to_owned());
        let (config, schema, target) = (self.config.clone(), self.schema.clone(), self.target());
        let target = target.to_owned();
        // A store of a newer build is refused before the fence is raised: an older standby
        // must not fence out a newer leader only to stop.
        kv::schema_is_current(self, &self.target)?;
        let held = self.run(READ_DEADLINE * 3, async move {
            // Synchronous like a commit; the row lock is waited for as long as the batch in
            // flight takes.
            let conn = connect(&config, &schema, &target, Role::Committer).await?;
            let fail = |e| pg_error(&target, e);
            conn.client
                .batch_execute("SET lock_timeout = 0")
                .await
                .map_err(fail)?;
            let row = match epoch {
                Some(e) => {
                    let mine = i64::try_from(e).unwrap_or(i64::MAX);
                    conn.client
                        .query_opt(sql::TAKE_OVER, &[&mine, &holder])
                        .await
                        .map_err(fail)?
                }
                None => Some(
                    conn.client
                        .query_one(sql::TAKE_NEXT, &[&holder])
                        .await
                        .map_err(fail)?,
                ),
            };
            if let Some(row) = row {
                return Ok(row.get::<_, i64>(0) as u64);
            }
            let row = conn
                .client
                .query_one(sql::HOLDER, &[])
                .await
                .map_err(fail)?;
            Err(StoreError::Fenced {
                mine: epoch.unwrap_or_default(),
                found: row.get::<_, i64>(0) as u64,
                holder: row.get(1),
            })
        })?;
        self.epoch.store(held, Ordering::SeqCst);
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = name;
        kv::open_schema(self, &self.target)?;
        tracing::info!(epoch = held, store = %self.target, "took the store over");
        Ok(held)
    }

    /// The database's name: the connection string's `dbname`, else (as PostgreSQL does) its
    /// `user`, else `postgres`.
    pub fn database(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
    }

    /// The epoch this instance holds the store with (0 before [`take_over`](Self::take_over)).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn migrate(&self) -> Result<()> {
        let (config, schema, target) = (
            self.config.clone(),
            self.schema.clone(),
            self.target.clone(),
        );
        self.run(READ_DEADLINE * 3, async move {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| pg_error(&target, e))?;
            tokio::spawn(connection);
            let fail = |e| pg_error(&target, e);
            // One transaction under a lock: instances starting together do not race, and a
            // newer layout is refused before anything is changed.
            let head = format!(
                "BEGIN; SELECT pg_advisory_xact_lock({}); {}",
                sql::MIGRATION_LOCK,
                sql::migration_head(&schema)
            );
            client.batch_execute(&head).await.map_err(fail)?;
            let version: i32 = client
                .query_one(
                    &format!("SELECT version FROM {schema}.ddl WHERE id = 1"),
                    &[],
                )
                .await
                .map_err(fail)?
                .get(0);
            if version > sql::DDL_VERSION {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(StoreError::NewerSchema {
                    location: target.clone(),
                    found: version as u32,
                    supported: sql::DDL_VERSION as u32,
                });
            }
            let body = format!("{} COMMIT;", sql::migration(&schema));
            client.batch_execute(&body).await.map_err(fail)?;
            Ok(())
        })
    }

    /// Run `work` on the store's runtime and wait for it (from any thread), at most `deadline`.
    fn run<T: Send + 'static>(
        &self,
        deadline: Duration,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                reason: format!("the store at {} is closed", self.target),
            });
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let target = self.target.clone();
        self.handle.spawn(async move {
            let outcome = match tokio::time::timeout(deadline, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(StoreError::Postgres {
                    target,
                    reason: format!("no answer in {} s", deadline.as_secs()),
                }),
            };
            let _ = tx.send(outcome);
        });
        // A task that died mid-way may have sent a commit: outcome unknown.
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Postgres {
                target: self.target.clone(),
                reason: "the PostgreSQL client's task stopped mid-way".into(),
            })
        })
    }

    /// A read connection from the pool, or a new one.
    fn reader(&self) -> Result<Arc<Conn>> {
        if let Some(conn) = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            && !conn.client.is_closed()
        {
            return Ok(conn);
        }
        let (config, schema, target) = (
            self.config.clone(),
            self.schema.clone(),
            self.target.clone(),
        );
        self.run(READ_DEADLINE, async move {
            connect(&config, &schema, &target, Role::Reader)
                .await
                .map(Arc::new)
        })
    }

    /// Run `read` on a read connection; the connection goes back to the pool if it worked.
    fn read<T: Send + 'static, F>(&self, read: impl FnOnce(Arc<Conn>) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let conn = self.reader()?;
        let outcome = self.run(READ_DEADLINE, read(conn.clone()));
        if outcome.is_ok() {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < POOL {
                pool.push(conn);
            }
        }
        outcome
    }

    /// Every entry of each range, from one snapshot.
    fn ranges(&self, ranges: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<Rows>> {
        let target = self.target.clone();
        self.read(move |conn| async move {
            let fail = |e| pg_error(&target, e);
            if let [(from, to)] = &ranges[..] {
                return Ok(vec![rows(
                    conn.client
                        .query(&conn.s.range, &[from, to])
                        .await
                        .map_err(fail)?,
                )]);
            }
            conn.client
                .execute(&conn.s.begin_snapshot, &[])
                .await
                .map_err(fail)?;
            let mut out = Vec::with_capacity(ranges.len());
            for (from, to) in &ranges {
                match conn.client.query(&conn.s.range, &[from, to]).await {
                    Ok(found) => out.push(rows(found)),
                    Err(e) => {
                        let _ = conn.client.batch_execute("ROLLBACK").await;
                        return Err(fail(e));
                    }
                }
            }
            conn.client
                .execute(&conn.s.commit, &[])
                .await
                .map_err(fail)?;
            Ok(out)
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks; a store can be dropped in async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn rows(found: Vec<tokio_postgres::Row>) -> Rows {
    found.into_iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Only a prefix of 0xff bytes gets here; the layout has none (every prefix is ASCII).
    vec![u8::MAX; 512]
}

impl Kv for PgStore {
    fn location(&self) -> String {
        let holder = self.holder.lock().unwrap_or_else(PoisonError::into_inner);
        format!(
            "PostgreSQL {} (epoch {}, instance {})",
            self.target,
            self.epoch(),
            if holder.is_empty() {
                "none: not taken over"
            } else {
                holder.as_str()
            }
        )
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (key, target) = (key.to_vec(), self.target.clone());
        self.read(move |conn| async move {
            let row = conn
                .client
                .query_opt(&conn.s.get, &[&key])
                .await
                .map_err(|e| pg_error(&target, e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn scan(&self, prefix: &[u8], each: &mut Visit<'_>) -> Result<()> {
        let found = self.ranges(vec![(prefix.to_vec(), prefix_end(prefix))])?;
        for (key, value) in found.into_iter().flatten() {
            each(&key, &value)?;
        }
        Ok(())
    }

    fn walk(&self, prefix: &[u8], start: &[u8], forward: bool, each: &mut Step<'_>) -> Result<()> {
        // Pages of one snapshot, fetched as the walk goes (it usually stops early).
        let conn = self.reader()?;
        let target = self.target.clone();
        let (c, t) = (conn.clone(), target.clone());
        self.run(READ_DEADLINE, async move {
            c.client
                .execute(&c.s.begin_snapshot, &[])
                .await
                .map_err(|e| pg_error(&t, e))?;
            Ok(())
        })?;
        // Forward: from `start` up to the prefix's end; backward: from the prefix up to just
        // past `start` (the key right after `start` is `start` + a zero byte).
        let (mut low, mut high) = match forward {
            true => (start.to_vec(), prefix_end(prefix)),
            false => (prefix.to_vec(), [start, &[0]].concat()),
        };
        let outcome = (|| loop {
            let (c, t, lo, hi) = (conn.clone(), target.clone(), low.clone(), high.clone());
            let page = self.run(READ_DEADLINE, async move {
                let statement = if forward {
                    &c.s.page_up
                } else {
                    &c.s.page_down
                };
                let found = c.client.query(statement, &[&lo, &hi, &PAGE]).await;
                found.map(rows).map_err(|e| pg_error(&t, e))
            })?;
            let full = page.len() as i64 == PAGE;
            for (key, value) in &page {
                if !key.starts_with(prefix) || !each(key, value)? {
                    return Ok(());
                }
            }
            match page.last() {
                Some((last, _)) if full => match forward {
                    true => low = [last.as_slice(), &[0]].concat(),
                    false => high = last.clone(),
                },
                _ => return Ok(()),
            }
        })();
        let (c, t) = (conn.clone(), target);
        let ended = self.run(READ_DEADLINE, async move {
            c.client
                .execute(&c.s.commit, &[])
                .await
                .map_err(|e| pg_error(&t, e))?;
            Ok(())
        });
        if outcome.is_ok() && ended.is_ok() {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < POOL {
                pool.push(conn);
            }
        }
        outcome.and(ended)
    }

    fn scan_ranges(&self, ranges: &[(Vec<u8>, Vec<u8>)], each: &mut Visit<'_>) -> Result<()> {
        for (key, value) in self.ranges(ranges.to_vec())?.into_iter().flatten() {
            each(&key, &value)?;
        }
        Ok(())
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        let stmts = plan::plan(ops);
        let epoch = self.epoch();
        if epoch == 0 {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "this instance has not taken the store at {} over (it is not the leader)",
                    self.target
                ),
            });
        }
        let committer = self.committer.clone();
        let (config, schema, target) = (
            self.config.clone(),
            self.schema.clone(),
            self.target.clone(),
        );
        let deadline = self.commit_deadline;
        // The inner deadline ends the commit (and its server session); the outer one only
        // bounds that clean-up.
        self.run(deadline + END_SESSION, async move {
            let mut slot = committer.lock().await;
            if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
                *slot = Some(connect(&config, &schema, &target, Role::Committer).await?);
            }
            let conn = slot.as_ref().expect("connected above");
            let outcome =
                match tokio::time::timeout(deadline, apply(conn, epoch, &stmts, &target)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        let pid = conn.pid;
                        *slot = None;
                        let ended = end_session(&config, &schema, &target, pid).await;
                        Err(StoreError::Postgres {
                            target: target.clone(),
                            reason: format!(
                                "the commit got no answer in {} s ({ended})",
                                deadline.as_secs_f64()
                            ),
                        })
                    }
                };
            match &outcome {
                Err(StoreError::Fenced { .. }) | Ok(()) => {}
                // Outcome unknown, or the connection is in doubt: start over on a new one.
                Err(_) => *slot = None,
            }
            outcome.map_err(|e| match e {
                StoreError::Fenced { found, holder, .. } => StoreError::Fenced {
                    mine: epoch,
                    found,
                    holder,
                },
                other => other,
            })
        })
    }
}

kv::store_on_kv!(PgStore, close(self) {
    self.closed.store(true, Ordering::SeqCst);
    self.readers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
});

#[cfg(test)]
mod tests;
