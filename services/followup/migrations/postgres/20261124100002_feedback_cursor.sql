-- Where this service is in the feedback feed (complaint confirmation calls).
INSERT INTO consumer_cursors (feed, position) VALUES ('feedback', 0);
