-- A proactive event's employee-facing texts in every locale dexbridge ships, as the
-- webhooks worker rendered them, so that each reader (the feed's Accept-Language, a
-- subscription's locale) gets its own language: texts maps a locale to the opening
-- message and the titles of the diagnosis's rules and remediations; close_texts maps a
-- locale to the recovery message. message and close_message stay the English texts.
-- Events recorded before have neither and are said in English.
ALTER TABLE proactive_events ADD COLUMN texts jsonb, ADD COLUMN close_texts jsonb;
