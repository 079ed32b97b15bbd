-- A money POST refused by the wallet's state (insufficient funds, a
-- receiver that does not exist, an overflow) binds its Idempotency-Key to
-- that refusal, so that a repeat gets it again and changes nothing even
-- after the balance changed (API.md). error_code is the refusal's errc
-- (actors/entity.hpp; 0: the answer was a success, in status and
-- response); a refusal's row has status 0 and its detail in response.
-- version lets one later image replace the first: a transfer's key is
-- written with its reserve (version 1, the 201), and if the receiver then
-- refuses the credit the transfer is reversed and the key rewritten with
-- the refusal (version 2), the answer its client got.
ALTER TABLE idempotency_keys
  ADD COLUMN error_code integer NOT NULL DEFAULT 0,
  ADD COLUMN version bigint NOT NULL DEFAULT 1;
