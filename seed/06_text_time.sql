-- 06_text_time.sql: pm_text_time(text) -> timestamptz, the instant an ISO-8601 text time names, so
-- that queries order and compare the TEXT *_at columns of 01_schema.sql by time, not by text (D8).
-- The library writes one canonical shape (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), but other writers (the
-- original bot) store others: `2024-01-10 10:00`, `...T09:00:00+00:00`, `...Z`, `...+02:00`, dates
-- only, fractions of any length; as text, `2024-01-10 10:00` sorts before `2024-01-10T09:00`.
--
-- Accepted (the same set as parse_iso() of repos/util/clock.h):
--   YYYY-MM-DD                                       midnight UTC
--   YYYY-MM-DD{T| }hh:mm[:ss[.f+]][zone]             zone: Z, +hh, +hhmm, +hh:mm (or -)
-- Text without a zone is UTC, never the session's TimeZone. Fractions beyond microseconds are
-- truncated; second 60 rolls into the next minute. NULL for NULL and for any other text, and for
-- text of that shape naming no real time (month 13, 30 February, hour 24, year 0): never an error.
--
-- IMMUTABLE, honestly: the value is built from the digits with make_timestamp, interval arithmetic
-- on timestamp and AT TIME ZONE 'UTC' (all immutable); no text is cast to a date/time type, so
-- neither TimeZone nor DateStyle can change a result. An index on pm_text_time(col) is possible.
-- Idempotent (CREATE OR REPLACE). No BEGIN/COMMIT: the migrator runs each file in a transaction.

CREATE OR REPLACE FUNCTION pm_text_time(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
DECLARE
    y      int;
    mo     int;
    d      int;
    h      int := 0;
    mi     int := 0;
    s      int := 0;
    micros bigint := 0;
    offh   int;
    offm   int;
    offmin int := 0;
    rest   text;
    tail   text;
    ts     timestamp;
BEGIN
    -- The shape, checked without capture groups (PostgreSQL's regex engine is about 100 times
    -- slower with them); the fields are then cut out by position. [0-9] and [.] rather than \d and
    -- \. : no backslashes, whatever standard_conforming_strings is.
    IF t !~ ('^[0-9]{4}-[0-9]{2}-[0-9]{2}'
             '(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]+)?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$') THEN
        RETURN NULL;
    END IF;
    y := substr(t, 1, 4)::int;
    mo := substr(t, 6, 2)::int;
    d := substr(t, 9, 2)::int;
    IF length(t) > 10 THEN
        h := substr(t, 12, 2)::int;
        mi := substr(t, 15, 2)::int;
        rest := substr(t, 17);                         -- [:ss[.f+]][zone]
        IF left(rest, 1) = ':' THEN
            s := substr(rest, 2, 2)::int;
            rest := substr(rest, 4);                   -- [.f+][zone]
            IF left(rest, 1) = '.' THEN
                tail := ltrim(substr(rest, 2), '0123456789');
                micros := rpad(left(substr(rest, 2, length(rest) - 1 - length(tail)), 6), 6, '0')::bigint;
                rest := tail;                          -- [zone]
            END IF;
        END IF;
        IF left(rest, 1) IN ('+', '-') THEN            -- +hh, +hhmm, +hh:mm
            offh := substr(rest, 2, 2)::int;
            offm := coalesce(nullif(replace(substr(rest, 4), ':', ''), '')::int, 0);
            IF offh > 23 OR offm > 59 THEN
                RETURN NULL;
            END IF;
            offmin := offh * 60 + offm;
            IF left(rest, 1) = '-' THEN
                offmin := -offmin;
            END IF;
        END IF;
    END IF;
    IF y < 1 OR mo NOT BETWEEN 1 AND 12 OR d NOT BETWEEN 1 AND 31 OR h > 23 OR mi > 59 OR s > 60 THEN
        RETURN NULL;
    END IF;
    -- A day past the month's end (30 February) is refused by make_timestamp: the only error the
    -- checks above leave possible, caught here by its class (22, data exception) and nothing wider.
    BEGIN
        ts := make_timestamp(y, mo, d, h, mi, 0);
    EXCEPTION WHEN data_exception THEN
        RETURN NULL;
    END;
    ts := ts + (s * 1000000 + micros) * interval '1 microsecond' - offmin * interval '1 minute';
    RETURN ts AT TIME ZONE 'UTC';
END;
$fn$;

COMMENT ON FUNCTION pm_text_time(text) IS
    'The instant an ISO-8601 text time names (no zone = UTC); NULL when the text is not one. See seed/06_text_time.sql.';
