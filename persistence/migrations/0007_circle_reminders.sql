-- Savings circles remind members who have not paid: once before a round's
-- due date and once when it has passed. The circle records the last round
-- it reminded for each, so a reminder goes out once, across restarts; a
-- sweep finds circles whose moment passed while they were not active.
ALTER TABLE circles ADD COLUMN IF NOT EXISTS reminded_round integer NOT NULL DEFAULT 0;
ALTER TABLE circles ADD COLUMN IF NOT EXISTS overdue_round integer NOT NULL DEFAULT 0;
