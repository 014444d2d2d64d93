//! Connections: their session settings (the committer's differ), prepared statements,
//! notice counting, and how PostgreSQL's errors are put into words.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use super::sql;
use crate::{Result, StoreError};

/// One connection and its prepared statements.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) s: Prepared,
    /// Notices the server sent on this connection. One during a commit (e.g. "canceling wait
    /// for synchronous replication", which comes with a successful `COMMIT`) fails the commit.
    pub(super) notices: Arc<AtomicU64>,
    /// The server process serving this connection (`pg_backend_pid()`).
    pub(super) pid: i32,
}

/// What a connection is for: its session settings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The one connection commits go through.
    Committer,
    /// Reads (and the takeover).
    Reader,
}

pub(super) struct Prepared {
    pub(super) get: Statement,
    pub(super) range: Statement,
    pub(super) page_up: Statement,
    pub(super) page_down: Statement,
    pub(super) begin: Statement,
    pub(super) begin_snapshot: Statement,
    pub(super) commit: Statement,
    pub(super) fence: Statement,
    pub(super) upsert: Statement,
    pub(super) delete: Statement,
    pub(super) delete_range: Statement,
}

/// Connect, set the session up for `role`, prepare the statements, and count the
/// connection's notices.
pub(super) async fn connect(
    config: &Config,
    schema: &str,
    target: &str,
    role: Role,
) -> Result<Conn> {
    let fail = |e| pg_error(target, e);
    let (client, mut connection) = config.connect(NoTls).await.map_err(fail)?;
    let notices = Arc::new(AtomicU64::new(0));
    let counted = notices.clone();
    tokio::spawn(async move {
        let mut messages = std::pin::pin!(futures::stream::poll_fn(move |cx| {
            connection.poll_message(cx)
        }));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let AsyncMessage::Notice(notice) = message {
                counted.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(notice = notice.message(), "PostgreSQL");
            }
        }
    });
    // The commit connection: synchronous commit whatever the role or database says, no
    // statement timeout (a cancel of the standby wait would pass a commit that is not
    // replicated), the fence row never waited on longer than a commit may take, and a session
    // that stops mid-transaction (a paused process) ended by the server so that it releases
    // the fence row.
    let session = match role {
        Role::Committer => format!(
            "SET search_path TO {schema}; SET synchronous_commit = on; SET statement_timeout = 0; \
             SET lock_timeout = '5s'; SET idle_in_transaction_session_timeout = '5s'; \
             SET default_transaction_isolation = 'read committed'"
        ),
        Role::Reader => format!("SET search_path TO {schema}; SET statement_timeout = 0"),
    };
    client.batch_execute(&session).await.map_err(fail)?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(fail)?
        .get(0);
    if role == Role::Committer {
        let standbys: String = client
            .query_one("SHOW synchronous_standby_names", &[])
            .await
            .map_err(fail)?
            .get(0);
        if standbys.trim().is_empty() {
            tracing::warn!(
                store = %target,
                "PostgreSQL has no synchronous standby (synchronous_standby_names is empty; \
                 after a promotion, until one is attached): a commit is durable on this \
                 server's disk only, and a failover to an asynchronous replica can lose \
                 acknowledged payments; set synchronous_standby_names for a standby that every \
                 commit waits for"
            );
        }
    }
    let prepare = |text| client.prepare(text);
    let s = Prepared {
        get: prepare(sql::GET).await.map_err(fail)?,
        range: prepare(sql::RANGE).await.map_err(fail)?,
        page_up: prepare(sql::PAGE_UP).await.map_err(fail)?,
        page_down: prepare(sql::PAGE_DOWN).await.map_err(fail)?,
        begin: prepare(sql::BEGIN).await.map_err(fail)?,
        begin_snapshot: prepare(sql::BEGIN_SNAPSHOT).await.map_err(fail)?,
        commit: prepare(sql::COMMIT).await.map_err(fail)?,
        fence: prepare(sql::FENCE).await.map_err(fail)?,
        upsert: prepare(sql::UPSERT).await.map_err(fail)?,
        delete: prepare(sql::DELETE).await.map_err(fail)?,
        delete_range: prepare(sql::DELETE_RANGE).await.map_err(fail)?,
    };
    Ok(Conn {
        client,
        s,
        notices,
        pid,
    })
}

pub(super) fn pg_error(target: &str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres {
        target: target.to_owned(),
        reason: error_text(&e),
    }
}

/// What went wrong, in PostgreSQL's words: tokio-postgres' own text is only the kind ("db
/// error"); the server's message, detail and hint, or the underlying cause, say what. None of
/// them holds a password.
pub(super) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        for extra in [db.detail(), db.hint()].into_iter().flatten() {
            text.push_str("; ");
            text.push_str(extra);
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Hosts, ports and database, for messages.
pub(super) fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    // One port serves every host; none given: 5432.
    let port = |i: usize| match ports {
        [one] => *one,
        _ => ports.get(i).copied().unwrap_or(5432),
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{}", port(i)),
            tokio_postgres::config::Host::Unix(p) => format!("{}:{}", p.display(), port(i)),
        })
        .collect();
    format!(
        "postgres://{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("postgres")
    )
}

pub(super) fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 48
}
