//! The SQL the PostgreSQL backend runs: its tables (created at open, under an advisory lock),
//! the fence, and the statements it prepares on every connection.

/// The table layout this build creates and reads (the `ddl` row). Record versions and the key
/// layout are separate: they live in the `kv` table like in RocksDB (`meta/schema`).
pub(super) const DDL_VERSION: i32 = 1;

/// Held while the tables are created, so instances starting together do not race.
pub(super) const MIGRATION_LOCK: i64 = 0x4641_5254_4849_4e47; // "FARTHING"

/// The SQLSTATE `farthing_fence` raises when the caller's epoch is not the store's.
pub(super) const FENCED_STATE: &str = "FNC01";

/// The schema and its layout version row, created first: a build that finds a newer layout
/// refuses it before it changes anything else.
pub(super) fn migration_head(schema: &str) -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.ddl (
    id int PRIMARY KEY CHECK (id = 1),
    version int NOT NULL
);
INSERT INTO {schema}.ddl VALUES (1, {DDL_VERSION}) ON CONFLICT (id) DO NOTHING;
"#
    )
}

/// The tables and the fence, in schema `{schema}`; idempotent.
///
/// - `kv`: the same ordered byte map as RocksDB's (`bytea` compares like memcmp, shorter
///   first on a tie: RocksDB's bytewise order). `fillfactor` below 100 leaves room for the
///   in-place (HOT) updates a channel row gets once per payment.
/// - `leader`: one row, the epoch of the instance allowed to commit. Every batch locks it
///   first (`farthing_fence`), so a takeover waits for the old leader's batch in flight and
///   no batch of an older epoch commits after it.
pub(super) fn migration(schema: &str) -> String {
    format!(
        r#"
CREATE TABLE IF NOT EXISTS {schema}.kv (
    k bytea PRIMARY KEY,
    v bytea NOT NULL
) WITH (fillfactor = 80);
CREATE TABLE IF NOT EXISTS {schema}.leader (
    id int PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    holder text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.leader VALUES (1, 0, 'nobody') ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION {schema}.farthing_fence(mine bigint) RETURNS void
LANGUAGE plpgsql AS $fence$
DECLARE
    held bigint;
    who text;
BEGIN
    SELECT l.epoch, l.holder INTO held, who FROM {schema}.leader l WHERE l.id = 1 FOR UPDATE;
    IF held IS DISTINCT FROM mine THEN
        RAISE EXCEPTION 'fenced: epoch % (%) holds the store, this instance has epoch %',
            held, who, mine
            USING ERRCODE = '{FENCED_STATE}', DETAIL = held::text || ' ' || who;
    END IF;
END
$fence$;
"#
    )
}

/// Statements prepared on every connection (the connection's `search_path` is the schema).
pub(super) const GET: &str = "SELECT v FROM kv WHERE k = $1";
/// Every entry from `$1` (included) to `$2` (excluded), ascending.
pub(super) const RANGE: &str = "SELECT k, v FROM kv WHERE k >= $1 AND k < $2 ORDER BY k";
/// A page of at most `$3` entries from `$1` (included) to `$2` (excluded), ascending.
pub(super) const PAGE_UP: &str = "SELECT k, v FROM kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3";
/// A page of at most `$3` entries below `$2` (excluded) down to `$1` (included), descending.
pub(super) const PAGE_DOWN: &str =
    "SELECT k, v FROM kv WHERE k >= $1 AND k < $2 ORDER BY k DESC LIMIT $3";
pub(super) const BEGIN: &str = "BEGIN";
pub(super) const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
pub(super) const COMMIT: &str = "COMMIT";
pub(super) const FENCE: &str = "SELECT farthing_fence($1)";
pub(super) const UPSERT: &str = "INSERT INTO kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v";
pub(super) const DELETE: &str = "DELETE FROM kv WHERE k = ANY($1::bytea[])";
pub(super) const DELETE_RANGE: &str = "DELETE FROM kv WHERE k >= $1 AND k < $2";

/// Take the store for epoch `$1` if every earlier holder's epoch is lower; the row lock waits
/// for a batch in flight.
pub(super) const TAKE_OVER: &str = "UPDATE leader SET epoch = $1, holder = $2, since = now() WHERE id = 1 AND epoch < $1 \
     RETURNING epoch";
/// Take the store with the next epoch (an instance without an election).
pub(super) const TAKE_NEXT: &str =
    "UPDATE leader SET epoch = epoch + 1, holder = $1, since = now() WHERE id = 1 RETURNING epoch";
/// Who holds the store.
pub(super) const HOLDER: &str = "SELECT epoch, holder FROM leader WHERE id = 1";
