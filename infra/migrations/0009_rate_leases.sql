-- Leases of a shared rate limit: up to want cells of the limit of p_key in one round
-- trip, so a replica debits the deployment's budget in chunks instead of once per call.
-- rate_limits keeps each limit's GCRA theoretical arrival time (tat); a lease advances it
-- by one interval per cell, exactly as that many single calls would. Cell j (from 0)
-- conforms at first_at + j × interval, first_at = greatest(tat, now) − tolerance; the
-- lease grants the cells that conform by now + horizon (horizon 0: the budget accrued
-- so far, burst included). With nothing to grant it grants 0 and first_at says when the
-- next cell will conform. Times are the database's: one clock for every replica.
CREATE FUNCTION rate_lease(p_key text, p_interval double precision, p_tolerance double precision,
                           p_horizon double precision, p_want integer)
RETURNS TABLE (granted integer, first_at timestamptz, db_now timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_tat  timestamptz;
    v_base timestamptz;
    v_room double precision;
BEGIN
    SELECT r.tat INTO v_tat FROM rate_limits r WHERE r.key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_limits AS r (key, tat) VALUES (p_key, '-infinity') ON CONFLICT (key) DO NOTHING;
        SELECT r.tat INTO v_tat FROM rate_limits r WHERE r.key = p_key FOR UPDATE;
    END IF;
    -- Read the clock once the row is locked, so time spent waiting is not granted twice.
    db_now := clock_timestamp();
    v_base := greatest(v_tat, db_now);
    first_at := v_base - make_interval(secs => p_tolerance);
    v_room := extract(epoch FROM db_now - first_at) + p_horizon; -- seconds from the first cell to the horizon
    granted := 0;
    IF v_room >= 0 AND p_want > 0 THEN
        granted := least(p_want::double precision, floor(v_room / p_interval + 1e-9) + 1)::integer;
        UPDATE rate_limits r SET tat = v_base + make_interval(secs => granted * p_interval) WHERE r.key = p_key;
    END IF;
    RETURN NEXT;
END
$$;
