-- A callback delivery is updated twice right after it is inserted: its claim (the
-- attempt count and the lease) and its finish (the state). Pages filled to the brim
-- leave its claim no room, so each claim wrote a whole new row version elsewhere,
-- its body with it, and an entry in every index. With room on the page the claim,
-- which changes no indexed column, is a heap-only update.
ALTER TABLE proactive_deliveries SET (fillfactor = 50);
