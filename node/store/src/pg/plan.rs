//! A batch of [`Op`]s as the few set-based statements PostgreSQL runs fastest: one upsert of
//! many rows (`unnest`) per run of puts, one delete of many keys, and each range delete in its
//! place.
//!
//! One statement cannot upsert a key twice ("ON CONFLICT DO UPDATE command cannot affect row
//! a second time"), and batches do repeat keys (the group committer merges many writers, a
//! channel is written once per payment). So the ops are cut into runs at each range delete,
//! and within a run only the last op on each key counts. Within a run the keys put and the
//! keys deleted are disjoint, so their two statements commute.

use std::collections::HashMap;

use crate::kv::Op;

/// One statement of a planned batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stmt {
    /// Insert or replace these keys with these values (same length, no key twice).
    Upsert(Vec<Vec<u8>>, Vec<Vec<u8>>),
    /// Delete these keys (no key twice).
    Delete(Vec<Vec<u8>>),
    /// Delete every key from the first (included) to the second (excluded).
    DeleteRange(Vec<u8>, Vec<u8>),
}

/// The statements that apply `ops` in order.
pub(super) fn plan(ops: Vec<Op>) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut run: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    for op in ops {
        match op {
            Op::Put(key, value) => {
                run.insert(key, Some(value));
            }
            Op::Delete(key) => {
                run.insert(key, None);
            }
            Op::DeleteRange(from, to) => {
                flush(&mut run, &mut out);
                out.push(Stmt::DeleteRange(from, to));
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

fn flush(run: &mut HashMap<Vec<u8>, Option<Vec<u8>>>, out: &mut Vec<Stmt>) {
    if run.is_empty() {
        return;
    }
    // Sorted: rows are then locked in one order, whoever commits.
    let mut entries: Vec<_> = run.drain().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let (mut keys, mut values, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in entries {
        match value {
            Some(value) => {
                keys.push(key);
                values.push(value);
            }
            None => deleted.push(key),
        }
    }
    if !deleted.is_empty() {
        out.push(Stmt::Delete(deleted));
    }
    if !keys.is_empty() {
        out.push(Stmt::Upsert(keys, values));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        Op::Put(k.into(), v.into())
    }

    #[test]
    fn the_last_op_on_a_key_wins_within_a_run() {
        let ops = vec![
            put("b", "1"),
            put("a", "1"),
            put("b", "2"),
            Op::Delete("a".into()),
            Op::Delete("c".into()),
            put("c", "3"),
        ];
        assert_eq!(
            plan(ops),
            vec![
                Stmt::Delete(vec![b"a".to_vec()]),
                Stmt::Upsert(
                    vec![b"b".to_vec(), b"c".to_vec()],
                    vec![b"2".to_vec(), b"3".to_vec()]
                ),
            ]
        );
    }

    #[test]
    fn a_range_delete_keeps_its_place_between_runs() {
        let ops = vec![
            put("k1", "old"),
            Op::DeleteRange("k".into(), "l".into()),
            put("k1", "new"),
        ];
        assert_eq!(
            plan(ops),
            vec![
                Stmt::Upsert(vec![b"k1".to_vec()], vec![b"old".to_vec()]),
                Stmt::DeleteRange(b"k".to_vec(), b"l".to_vec()),
                Stmt::Upsert(vec![b"k1".to_vec()], vec![b"new".to_vec()]),
            ]
        );
    }

    #[test]
    fn nothing_plans_nothing() {
        assert!(plan(Vec::new()).is_empty());
    }
}
