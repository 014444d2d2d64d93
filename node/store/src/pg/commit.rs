//! One batch as one PostgreSQL transaction, sent in one flight and fenced; and what is done
//! with a commit that gets no answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::types::ToSql;

use super::conn::{Conn, Role, connect, error_text, pg_error};
use super::plan::Stmt;
use super::sql;
use crate::{Result, StoreError};

/// One batch as one transaction, sent in one flight: `BEGIN`, the fence, the writes,
/// `COMMIT`. If the fence or a write fails the transaction is aborted before `COMMIT`, which
/// then rolls back: nothing written.
pub(super) async fn apply(conn: &Conn, epoch: u64, stmts: &[Stmt], target: &str) -> Result<()> {
    let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
    let mut params: Vec<Vec<&(dyn ToSql + Sync)>> = vec![vec![], vec![&epoch]];
    let mut statements = vec![&conn.s.begin, &conn.s.fence];
    for stmt in stmts {
        let (statement, p): (_, Vec<&(dyn ToSql + Sync)>) = match stmt {
            Stmt::Upsert(keys, values) => (&conn.s.upsert, vec![keys, values]),
            Stmt::Delete(keys) => (&conn.s.delete, vec![keys]),
            Stmt::DeleteRange(from, to) => (&conn.s.delete_range, vec![from, to]),
        };
        statements.push(statement);
        params.push(p);
    }
    statements.push(&conn.s.commit);
    params.push(vec![]);
    let notices = conn.notices.load(Ordering::SeqCst);
    let flight = statements
        .iter()
        .zip(&params)
        .map(|(statement, p)| conn.client.execute(*statement, p));
    let answers = futures::future::join_all(flight).await;
    let (commit, writes) = answers.split_last().expect("COMMIT is always sent");
    for answer in writes {
        if let Err(e) = answer {
            return Err(match fenced(e) {
                Some(fenced) => fenced,
                None => StoreError::Postgres {
                    target: target.to_owned(),
                    reason: error_text(e),
                },
            });
        }
    }
    if let Err(e) = commit {
        return Err(StoreError::Postgres {
            target: target.to_owned(),
            reason: error_text(e),
        });
    }
    if conn.notices.load(Ordering::SeqCst) != notices {
        return Err(StoreError::Postgres {
            target: target.to_owned(),
            reason: "the server sent a notice during the commit (e.g. that its wait for the \
                     synchronous standby was cancelled): it may be on the primary only"
                .into(),
        });
    }
    Ok(())
}

/// The [`StoreError::Fenced`] a failed fence check carries, if `e` is one.
fn fenced(e: &tokio_postgres::Error) -> Option<StoreError> {
    let db = e.as_db_error()?;
    if db.code().code() != sql::FENCED_STATE {
        return None;
    }
    let (found, holder) = db.detail()?.split_once(' ')?;
    Some(StoreError::Fenced {
        mine: 0,
        found: found.parse().ok()?,
        holder: holder.to_owned(),
    })
}

/// How long ending a stuck commit's server session may take.
pub(super) const END_SESSION: Duration = Duration::from_secs(5);

/// End the server session `pid` (a commit that got no answer: it may still be waiting for the
/// standby, holding the fence row) and wait until it is gone; what happened, for the error.
pub(super) async fn end_session(config: &Config, schema: &str, target: &str, pid: i32) -> String {
    let ended = async {
        let conn = connect(config, schema, target, Role::Reader).await?;
        let fail = |e| pg_error(target, e);
        conn.client
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .map_err(fail)?;
        while conn
            .client
            .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .map_err(fail)?
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<_, StoreError>(())
    };
    match tokio::time::timeout(END_SESSION, ended).await {
        Ok(Ok(())) => {
            "its server session was ended; it may be found whole later, never in part".into()
        }
        Ok(Err(e)) => format!("its server session could not be ended: {e}"),
        Err(_) => "its server session could not be ended in time".into(),
    }
}
