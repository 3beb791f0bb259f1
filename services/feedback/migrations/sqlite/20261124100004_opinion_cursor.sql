-- Where feedback is in the opinion feed (escalated incidents open cases).
INSERT INTO consumer_cursors (feed, position) VALUES ('opinion', 0);
