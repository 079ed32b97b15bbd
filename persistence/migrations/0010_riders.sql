-- Riders (actors/rider/): one row per rider user, written by the rider
-- entity through the journal (status changes durable, location pings
-- buffered). `region`: the S2 cell token (level 10) of the dispatcher that
-- holds the rider while it is available; a dispatcher that activates
-- reads its region's available riders from here. No foreign keys, as for
-- every table the journal writes.
CREATE TABLE IF NOT EXISTS riders (
  user_id         uuid             PRIMARY KEY,
  status          text             NOT NULL CHECK (status IN ('offline', 'available', 'busy')),
  lat             double precision CHECK (lat BETWEEN -90 AND 90),
  lng             double precision CHECK (lng BETWEEN -180 AND 180),
  heading         double precision,
  speed           double precision,
  located_at      timestamptz,
  region          text,
  rating          double precision NOT NULL DEFAULT 0,
  xp              bigint           NOT NULL DEFAULT 0 CHECK (xp >= 0),
  level           integer          NOT NULL DEFAULT 1,
  completed_tasks bigint           NOT NULL DEFAULT 0,
  task_id         uuid,
  version         bigint           NOT NULL
);
CREATE INDEX IF NOT EXISTS riders_available ON riders (region) WHERE status = 'available';
