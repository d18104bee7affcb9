-- The cache's key columns compare byte by byte (COLLATE "C"). They are only compared
-- for equality: with each other, in the joins between the three cache tables, and
-- with values the queries give, which take the column's collation; and equality is
-- the same under every deterministic collation. Sorting them, which every discovery
-- does to build the next partitions' primary keys and indexes, is not: in any other
-- collation each comparison calls the locale's strcoll, and PostgreSQL sorts without
-- abbreviated keys. On 650 000 activities (psql, a C.UTF-8 database) the activity's
-- primary key took 1.4 s to build instead of 2.0, its index on the device 0.5 s
-- instead of 1.1; in the benchmark at 500 000 devices, whose noise is as large, the
-- step after the last export that builds both took 1.3 to 2.0 s against 1.9 to 2.0.
--
-- A key lowered in SQL must name the database's collation, lower(x COLLATE
-- "default"): in "C" lower() changes ASCII letters only.
--
-- This rebuilds the indexes on these columns, the tables locked meanwhile (seconds
-- at 500 000 devices).
ALTER TABLE devices ALTER COLUMN collector_uid TYPE text COLLATE "C";
ALTER TABLE users ALTER COLUMN name_key TYPE text COLLATE "C";
ALTER TABLE user_devices ALTER COLUMN user_key TYPE text COLLATE "C",
    ALTER COLUMN collector_uid TYPE text COLLATE "C";
