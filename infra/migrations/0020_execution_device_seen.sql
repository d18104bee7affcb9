-- When the device of an execution was last seen, as dexbridge knew it when it
-- triggered the execution (services/remoteactions): asked live of the instance when
-- the cache's time alone would call a device offline that was online when the cache
-- read it. Later answers about the execution take the later of this and the cache's
-- time, so a device that reports all along is not called offline between two
-- discoveries. NULL for executions recorded before this migration.
ALTER TABLE executions ADD COLUMN device_last_seen timestamptz;
