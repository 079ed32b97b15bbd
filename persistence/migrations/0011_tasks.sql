-- Delivery tasks (actors/task/): one row per task, written by the task
-- entity through the journal (every step durable). The fee waits in the
-- creator's wallet escrow (an escrow_lock) until the task is completed
-- (a task_earning move: escrow → the rider's wallet, booked as `earning`)
-- or canceled (an escrow_refund). `settling` names a money move decided
-- and not yet ended; `tried` the riders offered the task so far (none is
-- offered it twice). Times are written to the microsecond, so that
-- offered_at - created_at measures the dispatch decision.
CREATE TABLE IF NOT EXISTS tasks (
  id            uuid             PRIMARY KEY,
  creator_id    uuid             NOT NULL,
  status        text             NOT NULL CHECK (status IN ('opening', 'void', 'pending', 'offered',
                                   'assigned', 'picked_up', 'completed', 'canceled', 'unassigned')),
  fee           bigint           NOT NULL CHECK (fee > 0),
  pickup_lat    double precision NOT NULL CHECK (pickup_lat BETWEEN -90 AND 90),
  pickup_lng    double precision NOT NULL CHECK (pickup_lng BETWEEN -180 AND 180),
  dropoff_lat   double precision NOT NULL CHECK (dropoff_lat BETWEEN -90 AND 90),
  dropoff_lng   double precision NOT NULL CHECK (dropoff_lng BETWEEN -180 AND 180),
  description   text,
  rider_id      uuid,
  offered_to    uuid,
  offer_until   timestamptz,
  offers        integer          NOT NULL DEFAULT 0,
  tried         text             NOT NULL DEFAULT '',
  settling      text             NOT NULL DEFAULT '' CHECK (settling IN ('', 'lock', 'pay', 'refund')),
  settle_by     uuid,
  proof         text,
  due_at        timestamptz,
  on_time       boolean,
  dispatch_us   bigint,
  created_at    timestamptz      NOT NULL,
  offered_at    timestamptz,
  assigned_at   timestamptz,
  picked_up_at  timestamptz,
  completed_at  timestamptz,
  canceled_at   timestamptz,
  version       bigint           NOT NULL,
  updated_at    timestamptz      NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at DESC);
CREATE INDEX IF NOT EXISTS tasks_by_creator ON tasks (creator_id, created_at DESC);
CREATE INDEX IF NOT EXISTS tasks_by_rider ON tasks (rider_id, created_at DESC) WHERE rider_id IS NOT NULL;
-- The sweep: tasks whose next step is the runtime's (a move decided, an
-- offer to time out, a dispatch to run).
CREATE INDEX IF NOT EXISTS tasks_in_motion ON tasks (updated_at)
  WHERE status IN ('opening', 'pending', 'offered') OR settling <> '';

-- A rider holds at most one offer at a time, until it is answered or
-- `offer_until` passes.
ALTER TABLE riders ADD COLUMN IF NOT EXISTS offer_task_id uuid;
ALTER TABLE riders ADD COLUMN IF NOT EXISTS offer_until timestamptz;

ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_move_type_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_move_type_check
  CHECK (move_type IN ('transfer', 'contribution', 'payout',
                       'escrow_lock', 'escrow_release', 'escrow_refund', 'task_earning'));
