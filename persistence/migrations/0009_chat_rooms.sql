-- Chat rooms (actors/room/). A room's row and its creator's and invited
-- members' rows are written by the gateway in one statement when the room
-- is created; from then on the room entity owns every change, through the
-- journal. No foreign keys, as for every table the journal writes (see
-- ledger_entries): the entity is what checks.
CREATE TABLE IF NOT EXISTS rooms (
  id         uuid        PRIMARY KEY,
  name       text        NOT NULL,
  creator_id uuid        NOT NULL,
  created_at timestamptz NOT NULL
);

-- One row per member. `joined` orders them (1: the creator). `read_seq`:
-- the last message the member has read (their read marker), written with
-- buffered durability: a crash may lose the last flush interval of it.
-- `version`: the room's counter of member changes, so that an older image
-- never overwrites a newer one.
CREATE TABLE IF NOT EXISTS room_members (
  room_id   uuid        NOT NULL,
  user_id   uuid        NOT NULL,
  joined    integer     NOT NULL,
  read_seq  bigint      NOT NULL DEFAULT 0 CHECK (read_seq >= 0),
  version   bigint      NOT NULL,
  joined_at timestamptz NOT NULL,
  PRIMARY KEY (room_id, user_id)
);
-- "My rooms".
CREATE INDEX IF NOT EXISTS room_members_user ON room_members (user_id, room_id);

-- Messages, append-only. `seq` is per room, from 1 without gaps: the room
-- entity numbers them and acknowledges one only once its row committed, so
-- a room's messages in PostgreSQL are always 1..max(seq). History and
-- resume (since_seq) read ranges of the primary key.
CREATE TABLE IF NOT EXISTS room_messages (
  room_id    uuid        NOT NULL,
  seq        bigint      NOT NULL CHECK (seq > 0),
  id         uuid        NOT NULL,
  sender_id  uuid        NOT NULL,
  text       text        NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (room_id, seq)
);
