-- Creators' profiles as of their last sync (from `app.bsky.actor.profile/self` on their
-- PDS), so pages show names and avatars without asking any PDS while rendering.
ALTER TABLE creators ADD COLUMN display_name TEXT;
ALTER TABLE creators ADD COLUMN description TEXT;
ALTER TABLE creators ADD COLUMN avatar_cid TEXT;
