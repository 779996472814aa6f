-- Issue 22, point 4: the intake's check for similar open tickets
-- (GET /api/v1/tickets/similar) reads the tickets of one category created in the
-- last days; the point itself (location.lat/lon of the document) is then compared
-- within those few rows.
CREATE INDEX ticket_view_similar ON ticket_view (category, created_at DESC);
