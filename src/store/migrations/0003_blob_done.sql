-- Devices that finished with a blob. A blob uploaded without `persist` is removed once
-- every device of the identity that downloaded it is done with it.
CREATE TABLE blob_done (
    blob_id      {bytes}    NOT NULL,
    identity_id  TEXT    NOT NULL,
    device_id    {int} NOT NULL,
    done_at      {int} NOT NULL,
    PRIMARY KEY (blob_id, identity_id, device_id)
);
