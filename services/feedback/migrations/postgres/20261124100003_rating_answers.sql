-- Which rating rows count an answer: per_dimension is 1 on an answer's first rating of a
-- dimension, per_answer on its first rating of all. Summed, they count answers exactly per
-- department and dimension, inside the covering index (no COUNT(DISTINCT) over sources).
ALTER TABLE ratings ADD COLUMN per_dimension BIGINT NOT NULL DEFAULT 1;
ALTER TABLE ratings ADD COLUMN per_answer BIGINT NOT NULL DEFAULT 1;
DROP INDEX ratings_month;
CREATE INDEX ratings_month ON ratings (month, department, dimension, score, per_dimension, per_answer);
