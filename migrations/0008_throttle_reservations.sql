-- Throttled attempts are reserved before they are evaluated (a password hashed, a client
-- registered): one atomic upsert takes a slot and records which attempt took it, so that
-- concurrent attempts on any replica can tell whether they got one. `failures` now counts
-- reserved attempts in the window.
ALTER TABLE login_throttle ADD COLUMN last_attempt TEXT NOT NULL DEFAULT '';
