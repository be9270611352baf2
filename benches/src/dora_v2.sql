-- DORA, version 2 (DESIGN.md section 5), per team, production, window [now - days, now] (both
-- ends inclusive, UTC). Placeholders: {now} (unix seconds) and {days} (whole days), substituted
-- textually. Events after now are ignored: incidents opened after now do not exist, resolutions
-- after now count as unresolved.
WITH
-- Production deployments finished in the window, every status. Not materialized: each use
-- scans deployments with its own filters, which keeps the planner's estimates right.
d AS NOT MATERIALIZED (
  SELECT id, service, team, status, started_at, finished_at, unplanned
  FROM deployments
  WHERE environment = 'production'
    AND finished_at >= to_timestamp({now} - {days} * 86400)
    AND finished_at <= to_timestamp({now})
),
-- Incidents linked to a production deployment (success or rolled_back) of the window, opened
-- by now, aggregated per deployment.
linked AS (
  SELECT i.deployment_id AS id,
         min(i.opened_at) AS first_opened,
         max(i.resolved_at) AS last_resolved,
         count(*) FILTER (WHERE i.resolved_at IS NULL OR i.resolved_at > to_timestamp({now})) AS open_count
  FROM incidents i
  JOIN d ON d.id = i.deployment_id AND d.status IN ('success', 'rolled_back')
  WHERE i.opened_at <= to_timestamp({now})
  GROUP BY i.deployment_id
),
-- Failed deployments, one row each, with their recovery sample (NULL = unrecovered).
failed AS (
  SELECT d.team,
         CASE
           WHEN d.status = 'rolled_back' THEN extract(epoch FROM d.finished_at - d.started_at)::float8
           WHEN l.open_count = 0
             THEN extract(epoch FROM l.last_resolved - least(d.finished_at, l.first_opened))::float8
         END AS secs
  FROM d LEFT JOIN linked l ON l.id = d.id
  WHERE d.status = 'rolled_back' OR (d.status = 'success' AND l.id IS NOT NULL)
),
recovery AS (
  SELECT team,
         count(*) AS failed,
         count(secs) AS recovered,
         count(*) - count(secs) AS unrecovered,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS median
  FROM failed GROUP BY team
),
-- Rework: a running maximum of "open until" over the service's incidents ordered by
-- opened_at, read at each deployment's started_at. At an equal instant the deployment sorts
-- first, so only incidents opened strictly before started_at count. An incident is open until
-- its resolution (if by now), else for 7 days after opened_at.
rework_events AS (
  SELECT d.service, d.team, d.unplanned, d.started_at AS t, 0 AS ord, NULL::timestamptz AS open_until
  FROM d WHERE d.status IN ('success', 'rolled_back')
  UNION ALL
  SELECT i.service, NULL, NULL, i.opened_at, 1,
         CASE WHEN i.resolved_at <= to_timestamp({now}) THEN i.resolved_at
              ELSE i.opened_at + interval '7 days' END
  FROM incidents i
  WHERE i.environment = 'production' AND i.opened_at <= to_timestamp({now})
),
rework AS (
  SELECT team, count(*) FILTER (WHERE unplanned OR open_until_max > t) AS unplanned
  FROM (
    SELECT team, unplanned, t, ord,
           max(open_until) OVER (PARTITION BY service ORDER BY t, ord ROWS UNBOUNDED PRECEDING) AS open_until_max
    FROM rework_events
  ) e
  WHERE ord = 0
  GROUP BY team
),
counts AS (
  SELECT team,
         count(*) FILTER (WHERE status = 'success') AS successes,
         count(*) FILTER (WHERE status IN ('success', 'rolled_back')) AS production,
         count(*) FILTER (WHERE status = 'failure') AS failed_to_apply
  FROM d GROUP BY team
),
-- Lead time: a commit of a successful deployment of the window is a change when no earlier
-- successful production deployment of the same service lists the same sha (earlier: by
-- finished_at, then id; within one deployment listing a sha twice, the earliest committed_at,
-- then the physical row, wins so that each (service, sha) counts once).
lead AS (
  SELECT team,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS median,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) AS p90,
         count(*) AS changes
  FROM (
    SELECT s.team, extract(epoch FROM s.finished_at - c.committed_at)::float8 AS secs
    FROM d s JOIN commits c ON c.deployment_id = s.id
    WHERE s.status = 'success'
      AND NOT EXISTS (
        SELECT 1 FROM commits c2 JOIN deployments e ON e.id = c2.deployment_id
        WHERE c2.sha = c.sha AND c2.ctid <> c.ctid AND e.service = s.service
          AND e.environment = 'production' AND e.status = 'success'
          AND (e.finished_at, e.id, c2.committed_at, c2.ctid) < (s.finished_at, s.id, c.committed_at, c.ctid)
      )
  ) x
  WHERE secs > 0
  GROUP BY team
),
-- Unlinked production incidents opened in the window: restore time.
restore AS (
  SELECT i.team,
         count(*) FILTER (WHERE i.resolved_at <= to_timestamp({now})) AS resolved,
         count(*) FILTER (WHERE i.resolved_at IS NULL OR i.resolved_at > to_timestamp({now})) AS unresolved,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM i.resolved_at - i.opened_at)::float8)
           FILTER (WHERE i.resolved_at <= to_timestamp({now})) AS median
  FROM incidents i
  WHERE i.environment = 'production'
    AND i.opened_at >= to_timestamp({now} - {days} * 86400)
    AND i.opened_at <= to_timestamp({now})
    AND (i.deployment_id IS NULL
         OR NOT EXISTS (SELECT 1 FROM deployments x WHERE x.id = i.deployment_id
                          AND x.environment = i.environment AND x.status IN ('success', 'rolled_back')
                          AND x.finished_at <= to_timestamp({now})))
  GROUP BY i.team
),
-- Deployment days and frequency buckets. Buckets of B days are counted back from now:
-- K = max(1, floor(days / B)); a success of age a (seconds before now) is in bucket
-- floor(a / B), except that a = K * B (the start of the oldest bucket) is in bucket K - 1;
-- buckets k >= K are outside every bucket. Successes are first reduced to distinct
-- (team, UTC date, bucket of 7 days, bucket of 30 days).
success_days AS (
  SELECT team, day,
         CASE WHEN age = n7 * 604800 THEN n7 - 1 ELSE floor(age / 604800)::int END AS k7,
         CASE WHEN age = n30 * 2592000 THEN n30 - 1 ELSE floor(age / 2592000)::int END AS k30
  FROM (
    SELECT team, (finished_at AT TIME ZONE 'UTC')::date AS day,
           {now} - extract(epoch FROM finished_at) AS age,
           greatest(1, {days} / 7) AS n7, greatest(1, {days} / 30) AS n30
    FROM d WHERE status = 'success'
  ) s
  GROUP BY 1, 2, 3, 4
),
deployment_days AS (
  SELECT team, count(DISTINCT day) AS days FROM success_days GROUP BY team
),
sizes (size, n) AS (
  VALUES (7, greatest(1, {days} / 7)), (30, greatest(1, {days} / 30))
),
bucketed AS (
  SELECT team, 7 AS size, k7 AS k, count(DISTINCT day) AS days
  FROM success_days WHERE k7 < greatest(1, {days} / 7) GROUP BY team, k7
  UNION ALL
  SELECT team, 30, k30, count(DISTINCT day)
  FROM success_days WHERE k30 < greatest(1, {days} / 30) GROUP BY team, k30
),
teams AS (
  SELECT team FROM counts UNION SELECT team FROM lead UNION SELECT team FROM restore
),
frequency AS (
  SELECT t.team,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(b.days, 0)) FILTER (WHERE z.size = 7) AS median7,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(b.days, 0)) FILTER (WHERE z.size = 30) AS median30
  FROM teams t
  CROSS JOIN sizes z
  CROSS JOIN LATERAL generate_series(0, z.n - 1) AS g(k)
  LEFT JOIN bucketed b ON b.team = t.team AND b.size = z.size AND b.k = g.k
  GROUP BY t.team
)
SELECT t.team,
       coalesce(c.successes, 0) AS successes,
       coalesce(c.production, 0) AS production,
       coalesce(c.failed_to_apply, 0) AS failed_to_apply,
       coalesce(r.failed, 0) AS failed,
       coalesce(w.unplanned, 0) AS unplanned,
       l.median AS lead_median,
       l.p90 AS lead_p90,
       coalesce(l.changes, 0) AS changes,
       r.median AS recovery_median,
       coalesce(r.recovered, 0) AS recovered,
       coalesce(r.unrecovered, 0) AS unrecovered,
       i.median AS incident_median,
       coalesce(i.resolved, 0) AS incidents_resolved,
       coalesce(i.unresolved, 0) AS incidents_unresolved,
       coalesce(dd.days, 0) AS deployment_days,
       f.median7,
       f.median30
FROM teams t
LEFT JOIN counts c ON c.team = t.team
LEFT JOIN recovery r ON r.team = t.team
LEFT JOIN rework w ON w.team = t.team
LEFT JOIN lead l ON l.team = t.team
LEFT JOIN restore i ON i.team = t.team
LEFT JOIN deployment_days dd ON dd.team = t.team
LEFT JOIN frequency f ON f.team = t.team
ORDER BY t.team;
