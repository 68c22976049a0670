-- Fills the sample ERP schema. The scale comes from the session setting ops_demo.scale
-- (1 = about 30 MB in seconds; 50 reaches about 1 GB). setseed makes every run produce the same
-- data; parallel workers are off because they would not share the seed.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.42);

CREATE TEMP TABLE demo_scale AS
SELECT current_setting('ops_demo.scale')::numeric AS s,
       date_trunc('day', now()) AS now_ts;

INSERT INTO public.users (email, full_name, role, is_active, created_at)
SELECT 'user' || g || '@example.com', 'User ' || g,
       (ARRAY['admin', 'planner', 'warehouse', 'sales', 'viewer'])[1 + g % 5],
       g % 10 <> 0, now_ts - (g % 1500) * interval '1 day'
FROM demo_scale, generate_series(1, greatest(20, (200 * s)::int)) AS g;

INSERT INTO public.materials (sku, name, category, unit, unit_cost, shelf_life_days)
SELECT 'MAT-' || lpad(g::text, 6, '0'), 'Material ' || g,
       (ARRAY['raw', 'packaging', 'chemical', 'finished', 'spare'])[1 + g % 5],
       (ARRAY['pcs', 'kg', 'l', 'box'])[1 + g % 4],
       round((1 + random() * 500)::numeric, 2),
       CASE WHEN g % 3 = 0 THEN 90 + g % 700 END
FROM demo_scale, generate_series(1, greatest(50, (500 * s)::int)) AS g;

INSERT INTO public.stock (warehouse, material_id, quantity, reorder_point, updated_at)
SELECT w, m.id, round((random() * 1000)::numeric, 3), round((random() * 200)::numeric, 3), now_ts
FROM demo_scale, public.materials AS m, unnest(ARRAY['HCM-1', 'HCM-2', 'HN-1', 'DN-1', 'CT-1']) AS w;

INSERT INTO public.lots (material_id, lot_code, quantity, produced_on, expires_on)
SELECT m.id, 'LOT-' || g, round((random() * 500)::numeric, 3),
       (now_ts - (random() * 900)::int * interval '1 day')::date,
       CASE WHEN m.shelf_life_days IS NOT NULL
            THEN (now_ts + ((random() * 400)::int - 100) * interval '1 day')::date END
FROM demo_scale, generate_series(1, greatest(200, (2000 * s)::int)) AS g
JOIN public.materials AS m ON m.id = 1 + g % (SELECT count(*) FROM public.materials);

INSERT INTO public.customers (code, name, region, created_at)
SELECT 'C' || lpad(g::text, 7, '0'), 'Customer ' || g,
       (ARRAY['north', 'central', 'south', 'export'])[1 + g % 4],
       now_ts - (g % 2000) * interval '1 day'
FROM demo_scale, generate_series(1, greatest(100, (2000 * s)::int)) AS g;

-- Five years of orders; older ones are mostly completed, recent ones still open.
INSERT INTO public.orders (customer_id, status, created_at, completed_at, updated_at, notes)
SELECT o.customer_id, o.status, o.created_at,
       CASE WHEN o.status = 'completed'
            THEN LEAST(o.created_at + (1 + o.r * 20) * interval '1 day', (SELECT now_ts FROM demo_scale)) END,
       o.created_at, CASE WHEN o.r < 0.1 THEN 'Deliver before noon; call on arrival' END
FROM (
    SELECT 1 + (random() * ((SELECT count(*) FROM public.customers) - 1))::int AS customer_id,
           now_ts - (random() * 1825) * interval '1 day' AS created_at,
           random() AS r, random() AS status_r
    FROM demo_scale, generate_series(1, (20000 * s)::int)
) AS base
CROSS JOIN LATERAL (
    SELECT base.customer_id, base.created_at, base.r,
           CASE WHEN base.created_at < (SELECT now_ts FROM demo_scale) - interval '30 days'
                THEN CASE WHEN base.status_r < 0.92 THEN 'completed' ELSE 'cancelled' END
                ELSE (ARRAY['draft', 'confirmed', 'shipped', 'completed'])[1 + floor(base.status_r * 4)::int]
           END AS status
) AS o;

INSERT INTO public.order_lines (order_id, line_no, material_id, quantity, unit_price)
SELECT o.id, l, 1 + ((o.id * 7 + l * 13) % (SELECT count(*) FROM public.materials)),
       1 + (random() * 50)::int, round((1 + random() * 300)::numeric, 2)
FROM public.orders AS o, generate_series(1, 1 + (o.id % 5)::int) AS l;

UPDATE public.orders AS o SET total = t.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM public.order_lines GROUP BY order_id) AS t
WHERE t.order_id = o.id;

INSERT INTO public.purchase_requests (requested_by, material_id, quantity, approval_state, approved_by,
                                      requested_at, decided_at)
SELECT 1 + g % (SELECT count(*) FROM public.users), 1 + g % (SELECT count(*) FROM public.materials),
       round((10 + random() * 990)::numeric, 3), st,
       CASE WHEN st <> 'pending' THEN 1 END,
       now_ts - (g % 700) * interval '1 day',
       CASE WHEN st <> 'pending' THEN now_ts - (g % 700) * interval '1 day' + interval '2 days' END
FROM demo_scale, generate_series(1, greatest(50, (1000 * s)::int)) AS g,
     LATERAL (SELECT (ARRAY['pending', 'approved', 'rejected', 'ordered'])[1 + g % 4] AS st) AS x;

-- Login history; a few accounts fail often in the last week (the security review finds them).
INSERT INTO auth.login_attempts (user_id, email, success, ip_address, attempted_at)
SELECT u, 'user' || u || '@example.com', random() > 0.05,
       ('10.0.' || (g % 250) || '.' || (1 + g % 250))::inet,
       now_ts - random() * interval '90 days'
FROM demo_scale, generate_series(1, (20000 * s)::int) AS g,
     LATERAL (SELECT 1 + g % (SELECT count(*) FROM public.users) AS u) AS x;
INSERT INTO auth.login_attempts (user_id, email, success, ip_address, attempted_at)
SELECT NULL, 'intruder' || (g % 3) || '@example.com', false, '203.0.113.7', now_ts - g * interval '10 minutes'
FROM demo_scale, generate_series(1, 45) AS g;

INSERT INTO public.ops_demo_meta (scale) SELECT s FROM demo_scale;
-- The generator runs VACUUM (ANALYZE) after this commits: a fresh sample has no dead tuples.
