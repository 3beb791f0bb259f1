-- Free-text answers and their sentiment from the opinion service (label 0 until analysed;
-- 1 negative, 2 neutral, 3 positive). The text stays in the response document.
CREATE TABLE comments (
    response_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    department  TEXT NOT NULL,
    month       BIGINT NOT NULL,
    label       BIGINT NOT NULL,
    score       DOUBLE PRECISION,
    topics      TEXT NOT NULL,
    analyzed_at BIGINT,
    PRIMARY KEY (response_id, question_id)
);
CREATE INDEX comments_month ON comments (month, label);
