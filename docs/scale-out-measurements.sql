-- The measurements of docs/scale-out.md (M1-M7), as run here: psql -X -f on a throwaway
-- PostgreSQL 15.18 cluster (initdb, max_prepared_transactions=20) with the Debian package
-- postgresql-15-partman 4.7.2. Run the parts in order in one fresh database (part m4 uses the
-- table of part m3); the outputs are summarised in docs/scale-out.md section 6. Nothing here
-- touches the project's tables.
--
-- M8 (2PC cost) is not in this file: 2,000 transactions of
--   BEGIN; UPDATE ck SET lsn = i WHERE instance_id = 'a'; COMMIT;
-- against 2,000 of
--   BEGIN; UPDATE ck SET lsn = i WHERE instance_id = 'a'; PREPARE TRANSACTION 'g<i>'; COMMIT PREPARED 'g<i>';
-- each file timed end to end with psql -f, alternated, 8 rounds.

-- ===== part m1 =====
\set ON_ERROR_STOP off
\echo == M1: PK (condition_id, trade_id) on a table partitioned by "timestamp"
CREATE TABLE t1 (condition_id text NOT NULL, trade_id text NOT NULL, "timestamp" bigint,
  PRIMARY KEY (condition_id, trade_id)) PARTITION BY RANGE ("timestamp");
\echo == M2: PK (condition_id, trade_id, "timestamp"): same trade, other timestamp
CREATE TABLE t2 (condition_id text NOT NULL, trade_id text NOT NULL, "timestamp" bigint,
  PRIMARY KEY (condition_id, trade_id, "timestamp")) PARTITION BY RANGE ("timestamp");
CREATE TABLE t2_d1 PARTITION OF t2 FOR VALUES FROM (1700000000000) TO (1700086400000);
CREATE TABLE t2_d2 PARTITION OF t2 FOR VALUES FROM (1700086400000) TO (1700172800000);
SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 't2'::regclass AND attname = 'timestamp';
INSERT INTO t2 VALUES ('c1','tr1',1700000001000);
INSERT INTO t2 VALUES ('c1','tr1',1700000001000) ON CONFLICT DO NOTHING;       -- same ts: deduplicated
INSERT INTO t2 VALUES ('c1','tr1',1700000002000) ON CONFLICT DO NOTHING;       -- same partition, other ts
INSERT INTO t2 VALUES ('c1','tr1',1700090000000) ON CONFLICT DO NOTHING;       -- other partition
INSERT INTO t2 VALUES ('c1','tr1',1700000001) ON CONFLICT DO NOTHING;          -- seconds instead of ms
SELECT tableoid::regclass, * FROM t2 ORDER BY 4;
INSERT INTO t2 VALUES ('c1','tr2',NULL);
\echo == M3: per-partition unique (condition_id, trade_id) on each leaf, no parent key
CREATE TABLE t3 (condition_id text NOT NULL, trade_id text NOT NULL, "timestamp" bigint NOT NULL)
  PARTITION BY RANGE ("timestamp");
CREATE TABLE t3_d1 PARTITION OF t3 FOR VALUES FROM (1700000000000) TO (1700086400000);
CREATE TABLE t3_d2 PARTITION OF t3 FOR VALUES FROM (1700086400000) TO (1700172800000);
CREATE TABLE t3_def PARTITION OF t3 DEFAULT;
ALTER TABLE t3_d1 ADD PRIMARY KEY (condition_id, trade_id);
ALTER TABLE t3_d2 ADD PRIMARY KEY (condition_id, trade_id);
ALTER TABLE t3_def ADD PRIMARY KEY (condition_id, trade_id);
INSERT INTO t3 VALUES ('c1','tr1',1700000001000);
INSERT INTO t3 VALUES ('c1','tr1',1700000002000);                                -- same partition, other ts
INSERT INTO t3 VALUES ('c1','tr1',1700000002000) ON CONFLICT DO NOTHING;         -- no target
INSERT INTO t3 VALUES ('c1','tr1',1700000002000) ON CONFLICT (condition_id, trade_id) DO NOTHING;  -- with target
INSERT INTO t3 VALUES ('c1','tr1',1700090000000) ON CONFLICT DO NOTHING;         -- other partition
INSERT INTO t3 VALUES ('c1','tr1',1600000000000) ON CONFLICT DO NOTHING;         -- out of range: default
SELECT tableoid::regclass, * FROM t3 ORDER BY 3;
\echo == M3b: COPY into the parent with a key already in the same partition
COPY t3 FROM STDIN;
c1	tr1	1700000003000
\.
\echo == M4: no default partition: a row out of every range
INSERT INTO t2 VALUES ('c9','tr9',1600000000000);
\echo == M5: drop the old partition, then the same trade arrives again (replay)
DROP TABLE t3_d1;
INSERT INTO t3 VALUES ('c1','tr1',1700000001000) ON CONFLICT DO NOTHING;
SELECT tableoid::regclass, * FROM t3 ORDER BY 3;

-- ===== part m2 =====
\set ON_ERROR_STOP off
\set VERBOSITY verbose
\echo == M5: retention dropped the partition; the same trade is replayed
CREATE TABLE t5 (condition_id text NOT NULL, trade_id text NOT NULL, "timestamp" bigint NOT NULL)
  PARTITION BY RANGE ("timestamp");
CREATE TABLE t5_d1 PARTITION OF t5 FOR VALUES FROM (1700000000000) TO (1700086400000);
CREATE TABLE t5_d2 PARTITION OF t5 FOR VALUES FROM (1700086400000) TO (1700172800000);
ALTER TABLE t5_d1 ADD PRIMARY KEY (condition_id, trade_id);
ALTER TABLE t5_d2 ADD PRIMARY KEY (condition_id, trade_id);
INSERT INTO t5 VALUES ('c1','tr5',1700000005000);
DROP TABLE t5_d1;
\echo -- without a default partition
INSERT INTO t5 VALUES ('c1','tr5',1700000005000) ON CONFLICT DO NOTHING;
CREATE TABLE t5_def PARTITION OF t5 DEFAULT;
ALTER TABLE t5_def ADD PRIMARY KEY (condition_id, trade_id);
\echo -- with a default partition
INSERT INTO t5 VALUES ('c1','tr5',1700000005000) ON CONFLICT DO NOTHING;
SELECT tableoid::regclass, * FROM t5;
\echo == M6: ON CONFLICT (condition_id, trade_id) against a parent key (condition_id, trade_id, "timestamp")
CREATE TABLE t6 (condition_id text NOT NULL, trade_id text NOT NULL, "timestamp" bigint,
  PRIMARY KEY (condition_id, trade_id, "timestamp")) PARTITION BY RANGE ("timestamp");
CREATE TABLE t6_d1 PARTITION OF t6 FOR VALUES FROM (1700000000000) TO (1700086400000);
INSERT INTO t6 VALUES ('c1','tr1',1700000001000) ON CONFLICT (condition_id, trade_id) DO NOTHING;
INSERT INTO t6 VALUES ('c1','tr1',1700000001000) ON CONFLICT (condition_id, trade_id, "timestamp") DO NOTHING;

-- ===== part m3 =====
\set ON_ERROR_STOP off
\echo == M7: pg_partman 4.7.2, epoch milliseconds, daily, template key (condition_id, trade_id)
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
SELECT extversion FROM pg_extension WHERE extname = 'pg_partman';
CREATE TABLE pt (condition_id text NOT NULL, trade_id text NOT NULL, token_id text, price real, size real,
  side text, "timestamp" bigint NOT NULL, raw_json text, outcome text, outcome_index integer)
  PARTITION BY RANGE ("timestamp");
CREATE INDEX ON pt (condition_id, "timestamp");
CREATE TABLE pt_template (LIKE pt);
ALTER TABLE pt_template ADD PRIMARY KEY (condition_id, trade_id);
SELECT partman.create_parent(p_parent_table := 'public.pt', p_control := 'timestamp', p_type := 'native',
  p_interval := 'daily', p_epoch := 'milliseconds', p_premake := 2,
  p_start_partition := to_char(now() - interval '5 days', 'YYYY-MM-DD'),
  p_template_table := 'public.pt_template');
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ') FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique) AS unique_idx
  FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'pt'::regclass ORDER BY 1;
\echo -- a trade 4 days old, the same trade again, and the same trade in seconds
INSERT INTO pt (condition_id, trade_id, "timestamp") VALUES ('c1','old', (extract(epoch from now() - interval '4 days')*1000)::bigint);
INSERT INTO pt (condition_id, trade_id, "timestamp") VALUES ('c1','old', (extract(epoch from now() - interval '4 days')*1000)::bigint) ON CONFLICT DO NOTHING;
INSERT INTO pt (condition_id, trade_id, "timestamp") VALUES ('c1','old', (extract(epoch from now() - interval '4 days'))::bigint) ON CONFLICT DO NOTHING;
SELECT tableoid::regclass, condition_id, trade_id, "timestamp" FROM pt ORDER BY 4;
\echo -- retention 2 days, drop tables, run maintenance
UPDATE partman.part_config SET retention = '2 days', retention_keep_table = false WHERE parent_table = 'public.pt';
SELECT partman.run_maintenance('public.pt');
SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'pt'::regclass ORDER BY 1;
\echo -- the 4-day-old trade is replayed after retention dropped its partition
INSERT INTO pt (condition_id, trade_id, "timestamp") VALUES ('c1','old', (extract(epoch from now() - interval '4 days')*1000)::bigint) ON CONFLICT DO NOTHING;
SELECT tableoid::regclass, condition_id, trade_id, "timestamp" FROM pt ORDER BY 4;
SELECT * FROM partman.check_default(p_exact_count := true);

-- ===== part m4 =====
\echo -- M7b: another 4-day-old trade (its daily partition was dropped by retention)
INSERT INTO pt (condition_id, trade_id, "timestamp") VALUES ('c1','old2', (extract(epoch from now() - interval '4 days')*1000)::bigint) ON CONFLICT DO NOTHING;
SELECT tableoid::regclass, condition_id, trade_id, "timestamp" FROM pt ORDER BY 4;
\echo -- run_maintenance again: does it create a partition for the past range / move default rows?
SELECT partman.run_maintenance('public.pt');
SELECT tableoid::regclass, condition_id, trade_id FROM pt ORDER BY 3;

