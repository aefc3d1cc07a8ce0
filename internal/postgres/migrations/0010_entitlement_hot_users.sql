-- 0010: the users an instance was answering entitlement checks for when it
-- stopped gracefully (Store.SaveHotUsers): the next instance to start warms
-- its entitlement cache with them (Store.HotUsers) instead of walking every
-- user by id. One set, replaced by each save; two saves at once merge.
CREATE TABLE entitlement_hot_users (
    user_id  TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL, -- 0: the user checked most recently in its save
    saved_at BIGINT  NOT NULL  -- unix seconds
);
