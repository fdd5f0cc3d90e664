-- One-time invite codes for enrolment. Only a keyed hash of each code is kept; a code is
-- spent in the transaction that creates the identity it admitted.
CREATE TABLE invites (
    code_hash   {bytes}    PRIMARY KEY,
    created_at  {int} NOT NULL,
    expires_at  {int} NOT NULL,
    redeemed_at {int},
    identity_id TEXT
);
