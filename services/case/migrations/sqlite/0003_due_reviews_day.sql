-- The day (Europe/Oslo) the computed reviews last applied were computed on: the third part of their
-- stamp (SyncDueReviews). NULL in rows applied before days were stamped: older than any day.
ALTER TABLE cases ADD COLUMN due_reviews_computed_on TEXT;
