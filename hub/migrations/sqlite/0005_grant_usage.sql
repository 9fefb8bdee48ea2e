-- Records disclosed under each grant per day (China Standard Time), for daily quotas.
CREATE TABLE grant_usage (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    -- YYYY-MM-DD in China Standard Time.
    day      TEXT NOT NULL,
    records  INTEGER NOT NULL,
    PRIMARY KEY (grant_id, day)
);
