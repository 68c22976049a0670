-- Fills the sample ERP schema. The scale comes from the session setting ops_demo.scale
-- (1 = about 37 MB in seconds; 50 about 1.5 GB). setseed makes every run produce the same
-- data; parallel workers are off because they would not share the seed.
--
-- The values look like an ERP's, because backup sizes and compression figures are measured on
-- them: names, addresses, SKUs, units, statuses and phrases repeat from small vocabularies; prices
-- come from a price list; rows are inserted in time order with second-precision timestamps in
-- business hours; people and customers keep their own phone, address and IP.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.42);

CREATE TEMP TABLE demo_scale AS
SELECT current_setting('ops_demo.scale')::numeric AS s,
       date_trunc('day', now()) AS now_ts;

CREATE TEMP TABLE words AS
SELECT ARRAY['Nguyen', 'Tran', 'Le', 'Pham', 'Hoang', 'Huynh', 'Phan', 'Vu', 'Vo', 'Dang', 'Bui', 'Do', 'Ho',
             'Ngo', 'Duong', 'Ly'] AS family,
       ARRAY['Van', 'Thi', 'Minh', 'Duc', 'Thanh', 'Ngoc', 'Quoc', 'Hoang', 'Thu', 'Gia'] AS middle,
       ARRAY['Anh', 'Binh', 'Chi', 'Dung', 'Giang', 'Ha', 'Hai', 'Hoa', 'Hung', 'Huong', 'Khanh', 'Lan', 'Linh',
             'Long', 'Mai', 'Minh', 'Nam', 'Ngoc', 'Phuong', 'Quan', 'Son', 'Thao', 'Thu', 'Trang', 'Tuan', 'Van',
             'Viet', 'Yen'] AS given,
       ARRAY['Sao Mai', 'Hoa Sen', 'Phuong Dong', 'Thien Long', 'Minh Phat', 'An Khang', 'Tan Tien', 'Viet Tin',
             'Hong Ha', 'Kim Ngan', 'Bao Chau', 'Dai Phat', 'Thanh Cong', 'Hung Thinh', 'Phu Gia', 'Nam Viet',
             'Song Huong', 'Truong Son', 'Cuu Long', 'Ben Thanh', 'Lotus', 'Golden Lily', 'Blue Ocean',
             'Green Leaf'] AS brand,
       ARRAY['Cosmetics', 'Trading', 'Pharma', 'Retail', 'Beauty', 'Distribution', 'Food', 'Supermarket', 'Spa',
             'Import Export'] AS trade,
       ARRAY['Co., Ltd', 'JSC', 'Trading Co.', 'Company Limited'] AS form,
       ARRAY['Nguyen Trai', 'Le Loi', 'Tran Hung Dao', 'Hai Ba Trung', 'Vo Van Tan', 'Cach Mang Thang Tam',
             'Dien Bien Phu', 'Ly Thuong Kiet', 'Nguyen Van Cu', 'Pham Van Dong', 'Hoang Van Thu', 'Le Van Sy',
             'Phan Xich Long', 'Nguyen Thi Minh Khai', 'Tran Phu', 'Quang Trung'] AS street,
       ARRAY['Ward 1', 'Ward 3', 'Ward 7', 'Ward 12', 'Ben Nghe Ward', 'Tan Dinh Ward', 'Dong Da Ward',
             'Hai Chau 1 Ward'] AS ward,
       ARRAY['District 1', 'District 3', 'District 5', 'District 7', 'District 10', 'Binh Thanh District',
             'Tan Binh District', 'Phu Nhuan District', 'Go Vap District', 'Thu Duc City', 'Hoan Kiem District',
             'Ba Dinh District', 'Cau Giay District', 'Hai Chau District'] AS district,
       ARRAY['Rose Water Toner', 'Vitamin C Serum', 'Aloe Vera Gel', 'Lipstick Base', 'Sunscreen SPF50',
             'Facial Cleanser', 'Shampoo Base', 'Body Lotion', 'Hand Cream', 'Glycerin USP', 'Cetyl Alcohol',
             'Fragrance Oil Jasmine', 'Niacinamide Powder', 'Hyaluronic Acid', 'Coconut Oil RBD', 'PET Bottle',
             'Pump Dispenser', 'Carton Box', 'Label Roll', 'Shrink Film', 'Glass Jar', 'Aluminium Tube',
             'Gift Set', 'Sheet Mask'] AS product,
       ARRAY['30ml', '50ml', '100ml', '250ml', '500ml', '1L', '5L', '1kg', '5kg', '25kg', '50g', '100g'] AS size,
       ARRAY['Stored at 15-25 C, away from direct sunlight.', 'Keep container tightly closed.',
             'Hazard class: none. Handle with gloves.', 'Food grade. FIFO by lot.',
             'Fragile: stack at most 5 cartons.', NULL, NULL] AS note,
       ARRAY['Deliver before noon; call on arrival', 'Invoice to head office', 'Customer picks up at HCM-1',
             'Urgent: promotion stock', 'Pack with bubble wrap', 'Partial delivery accepted',
             'Export documents required (C/O form D)', 'Confirm price with sales before shipping'] AS phrase,
       ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
             'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
             'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
             'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36',
             'ERP-Scanner/2.3 (Zebra TC52; Android 11)', 'python-requests/2.31.0'] AS agent;

-- pick(array, i): the i-th element, wrapping around (deterministic choices from a vocabulary)
CREATE FUNCTION pg_temp.pick(a text[], i bigint) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT a[1 + (i % cardinality(a))::int] $$;

INSERT INTO public.users (email, full_name, role, is_active, department, phone, created_at)
SELECT 'user' || g || '@example.com',
       pg_temp.pick(family, g * 7) || ' ' || pg_temp.pick(middle, g * 3) || ' ' || pg_temp.pick(given, g * 11),
       (ARRAY['admin', 'planner', 'warehouse', 'sales', 'viewer'])[1 + g % 5],
       g % 10 <> 0,
       (ARRAY['IT', 'Planning', 'Warehouse', 'Sales', 'Finance'])[1 + g % 5],
       '+84 9' || (g % 10) || ' ' || lpad(((g::bigint * 7919) % 1000)::text, 3, '0') || ' ' || lpad(((g::bigint * 104729) % 10000)::text, 4, '0'),
       now_ts - (g % 1500) * interval '1 day'
FROM demo_scale, words, generate_series(1, greatest(20, (200 * s)::int)) AS g;

INSERT INTO public.materials (sku, name, category, unit, unit_cost, list_price, barcode, supplier, description,
                              shelf_life_days)
SELECT 'MAT-' || lpad(g::text, 6, '0'),
       pg_temp.pick(product, g) || ' ' || pg_temp.pick(size, g / 24),
       (ARRAY['raw', 'packaging', 'chemical', 'finished', 'spare'])[1 + g % 5],
       (ARRAY['pcs', 'kg', 'l', 'box'])[1 + g % 4],
       cost, round(cost * 1.4, -3),
       '893' || lpad(((g::bigint * 2654435761) % 1000000000)::text, 9, '0') || (g % 10),
       pg_temp.pick(brand, g * 5) || ' ' || pg_temp.pick(trade, g) || ' ' || pg_temp.pick(form, g),
       pg_temp.pick(note, g),
       CASE WHEN g % 3 = 0 THEN 90 + g % 700 END
FROM words, (
    SELECT g, (round(5 + random() * 495) * 1000)::numeric(12, 2) AS cost  -- whole thousands of VND
    FROM demo_scale, generate_series(1, greatest(50, (500 * s)::int)) AS g
) AS c;

INSERT INTO public.stock (warehouse, material_id, quantity, reorder_point, updated_at)
SELECT w, m.id, round(random() * 1000), (ARRAY[0, 50, 100, 200])[1 + m.id % 4], now_ts
FROM demo_scale, public.materials AS m, unnest(ARRAY['HCM-1', 'HCM-2', 'HN-1', 'DN-1', 'CT-1']) AS w;

INSERT INTO public.lots (material_id, lot_code, quantity, produced_on, expires_on)
SELECT m.id, 'LOT-' || to_char(p.produced_on, 'YYMMDD') || '-' || lpad(p.g::text, 6, '0'), round(random() * 500),
       p.produced_on,
       CASE WHEN m.shelf_life_days IS NOT NULL
            THEN (p.now_ts + ((random() * 400)::int - 100) * interval '1 day')::date END
FROM (
    SELECT g, now_ts, (now_ts - (random() * 900)::int * interval '1 day')::date AS produced_on
    FROM demo_scale, generate_series(1, greatest(200, (2000 * s)::int)) AS g
) AS p
JOIN public.materials AS m ON m.id = 1 + p.g % (SELECT count(*) FROM public.materials);

INSERT INTO public.customers (code, name, region, tax_code, phone, email, address, city, payment_terms,
                              credit_limit, created_at)
SELECT 'C' || lpad(g::text, 7, '0'),
       pg_temp.pick(brand, g) || ' ' || pg_temp.pick(trade, g / 24) || ' ' || pg_temp.pick(form, g / 7),
       r.region,
       '03' || lpad(((g::bigint * 48271) % 100000000)::text, 8, '0'),
       '+84 ' || r.area || ' ' || lpad(((g::bigint * 7919) % 10000)::text, 4, '0') || ' ' || lpad(((g::bigint * 31) % 10000)::text, 4, '0'),
       (ARRAY['order', 'purchasing', 'ketoan', 'info'])[1 + g % 4] || g || '@'
           || (ARRAY['gmail.com', 'yahoo.com', 'company.vn', 'outlook.com'])[1 + g % 4],
       (1 + g % 320) || ' ' || pg_temp.pick(street, g * 3) || ', ' || pg_temp.pick(ward, g) || ', '
           || pg_temp.pick(district, g * 5),
       r.city,
       (ARRAY['NET30', 'NET30', 'NET15', 'COD', 'NET60', 'PREPAID'])[1 + g % 6],
       (ARRAY[50000000, 100000000, 200000000, 500000000])[1 + g % 4],
       now_ts - (g % 2000) * interval '1 day'
FROM demo_scale, words, generate_series(1, greatest(100, (2000 * s)::int)) AS g,
     LATERAL (SELECT (ARRAY['north', 'central', 'south', 'export'])[1 + g % 4] AS region,
                     (ARRAY['24', '236', '28', '65'])[1 + g % 4] AS area,
                     (ARRAY['Ha Noi', 'Da Nang', 'Ho Chi Minh City', 'Singapore'])[1 + g % 4] AS city) AS r;

-- Five years of orders up to yesterday, in time order (as an ERP inserts them); older ones are mostly completed,
-- recent ones still open.
INSERT INTO public.orders (customer_id, status, currency, channel, payment_terms, ship_to, created_by, created_at,
                           completed_at, updated_at, notes)
SELECT o.customer_id, o.status, CASE WHEN c.region = 'export' THEN 'USD' ELSE 'VND' END,
       (ARRAY['distributor', 'retail', 'online', 'spa', 'distributor'])[1 + o.customer_id % 5],
       c.payment_terms, c.address || ', ' || c.city, u.full_name, o.created_at,
       CASE WHEN o.status = 'completed'
            THEN LEAST(date_trunc('second', o.created_at + (1 + o.r * 20) * interval '1 day'),
                       (SELECT now_ts FROM demo_scale)) END,
       o.created_at,
       CASE WHEN o.r < 0.3 THEN (SELECT pg_temp.pick(phrase, (o.r * 1000)::int) FROM words) END
FROM (
    SELECT base.*,
           CASE WHEN base.created_at < (SELECT now_ts FROM demo_scale) - interval '30 days'
                THEN CASE WHEN base.status_r < 0.92 THEN 'completed' ELSE 'cancelled' END
                ELSE (ARRAY['draft', 'confirmed', 'shipped', 'completed'])[1 + floor(base.status_r * 4)::int]
           END AS status
    FROM (
        SELECT g, 1 + (random() * ((SELECT count(*) FROM public.customers) - 1))::int AS customer_id,
               now_ts - interval '1826 days' + floor(g * 1825.0 / (20000 * s)) * interval '1 day'
                   + date_trunc('second', interval '8 hours' + random() * interval '10 hours') AS created_at,
               random() AS r, random() AS status_r
        FROM demo_scale, generate_series(1, (20000 * s)::int) AS g
    ) AS base
) AS o
JOIN public.customers AS c ON c.id = o.customer_id
JOIN public.users AS u ON u.id = 1 + o.g % (SELECT count(*) FROM public.users)
ORDER BY o.g;

INSERT INTO public.order_lines (order_id, line_no, material_id, quantity, unit_price, description, unit,
                                discount_pct, tax_rate)
SELECT o.id, l, m.id, (ARRAY[1, 2, 3, 5, 6, 10, 12, 20, 24, 50, 100])[1 + floor(random() * 11)::int],
       m.list_price, m.name, m.unit, (ARRAY[0, 0, 0, 0, 5, 10])[1 + (o.id + l) % 6],
       CASE WHEN m.category = 'finished' THEN 10 ELSE 8 END
FROM public.orders AS o
CROSS JOIN LATERAL generate_series(1, 1 + (o.id % 5)::int) AS l
JOIN public.materials AS m ON m.id = 1 + ((o.id * 7 + l * 13) % (SELECT count(*) FROM public.materials))
ORDER BY o.id, l;

UPDATE public.orders AS o SET total = t.total
FROM (SELECT order_id, sum(round(quantity * unit_price * (1 - discount_pct / 100), 2)) AS total
      FROM public.order_lines GROUP BY order_id) AS t
WHERE t.order_id = o.id;

INSERT INTO public.purchase_requests (requested_by, material_id, quantity, approval_state, approved_by,
                                      requested_at, decided_at)
SELECT 1 + g % (SELECT count(*) FROM public.users), 1 + g % (SELECT count(*) FROM public.materials),
       (ARRAY[50, 100, 200, 500, 1000])[1 + g % 5], st,
       CASE WHEN st <> 'pending' THEN 1 END,
       now_ts - (g % 700) * interval '1 day',
       CASE WHEN st <> 'pending' THEN now_ts - (g % 700) * interval '1 day' + interval '2 days' END
FROM demo_scale, generate_series(1, greatest(50, (1000 * s)::int)) AS g,
     LATERAL (SELECT (ARRAY['pending', 'approved', 'rejected', 'ordered'])[1 + g % 4] AS st) AS x;

-- Login history, in time order; each account signs in from its own address and device. A few
-- accounts fail often in the last week (the security review finds them).
INSERT INTO auth.login_attempts (user_id, email, success, ip_address, user_agent, attempted_at)
SELECT a.u, 'user' || a.u || '@example.com', random() > 0.05,
       ('10.0.' || (a.u % 40) || '.' || (1 + a.u % 200))::inet,
       (SELECT pg_temp.pick(agent, a.u) FROM words), a.at
FROM (
    SELECT 1 + g % (SELECT count(*) FROM public.users) AS u,
           date_trunc('second', now_ts - interval '90 days' + random() * interval '90 days') AS at
    FROM demo_scale, generate_series(1, (20000 * s)::int) AS g
) AS a
ORDER BY a.at;
INSERT INTO auth.login_attempts (user_id, email, success, ip_address, user_agent, attempted_at)
SELECT NULL, 'intruder' || (g % 3) || '@example.com', false, '203.0.113.7', 'python-requests/2.31.0',
       now_ts - g * interval '10 minutes'
FROM demo_scale, generate_series(1, 45) AS g;

INSERT INTO public.ops_demo_meta (scale, data_version)
SELECT s, current_setting('ops_demo.data_version')::int FROM demo_scale;
-- The generator runs VACUUM (ANALYZE) after this commits: a fresh sample has no dead tuples.
