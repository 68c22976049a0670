-- Estimated btree index bloat from planner statistics, without extensions: the widely used
-- estimate from ioguix/pgsql-bloat-estimation. It compares an index's pages with the pages its
-- rows would need at its fillfactor. Needs ANALYZE'd tables; rough for very small indexes.
SELECT nspname AS schema_name, tblname AS table_name, idxname AS index_name, idxoid::bigint AS index_oid,
       (bs * relpages)::bigint AS bytes,
       GREATEST(bs * (relpages - est_pages_ff), 0)::bigint AS bloat_bytes,
       CASE WHEN relpages > 0 THEN GREATEST(relpages - est_pages_ff, 0)::float / relpages ELSE 0 END AS bloat_ratio
FROM (
    SELECT coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor
                                              / (100 * (4 + nulldatahdrwidth)::float))), 0) AS est_pages_ff,
           bs, nspname, tblname, idxname, idxoid, relpages
    FROM (
        SELECT maxalign, bs, nspname, tblname, idxname, reltuples, relpages, idxoid, fillfactor,
               (index_tuple_hdr_bm + maxalign
                - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign ELSE index_tuple_hdr_bm % maxalign END
                + nulldatawidth + maxalign
                - CASE WHEN nulldatawidth = 0 THEN 0
                       WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                       ELSE nulldatawidth::integer % maxalign END
               )::numeric AS nulldatahdrwidth,
               pagehdr, pageopqdata
        FROM (
            SELECT n.nspname, i.tblname, i.idxname, i.reltuples, i.relpages, i.idxoid, i.fillfactor,
                   current_setting('block_size')::numeric AS bs,
                   8 AS maxalign, 24 AS pagehdr, 16 AS pageopqdata,
                   CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8 ELSE 8 + ((32 + 8 - 1) / 8) END AS index_tuple_hdr_bm,
                   sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS nulldatawidth
            FROM (
                SELECT ct.relname AS tblname, ct.relnamespace, ic.idxname, ic.reltuples, ic.relpages, ic.idxoid,
                       ic.fillfactor, coalesce(a1.attname, a2.attname) AS attname,
                       CASE WHEN a1.attnum IS NULL THEN ic.idxname ELSE ct.relname END AS attrelname
                FROM (
                    SELECT ci.relname AS idxname, ci.reltuples, ci.relpages, x.indrelid AS tbloid, x.indexrelid AS idxoid,
                           coalesce(substring(array_to_string(ci.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint, 90) AS fillfactor,
                           string_to_array(textin(int2vectorout(x.indkey)), ' ')::int[] AS indkey,
                           generate_series(1, x.indnatts) AS attpos
                    FROM pg_index AS x
                    JOIN pg_class AS ci ON ci.oid = x.indexrelid
                    WHERE ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') AND ci.relpages > 0 AND x.indisvalid
                ) AS ic
                JOIN pg_class AS ct ON ct.oid = ic.tbloid
                LEFT JOIN pg_attribute AS a1 ON ic.indkey[ic.attpos] <> 0 AND a1.attrelid = ic.tbloid AND a1.attnum = ic.indkey[ic.attpos]
                LEFT JOIN pg_attribute AS a2 ON ic.indkey[ic.attpos] = 0 AND a2.attrelid = ic.idxoid AND a2.attnum = ic.attpos
            ) AS i
            JOIN pg_namespace AS n ON n.oid = i.relnamespace
            JOIN pg_stats AS s ON s.schemaname = n.nspname AND s.tablename = i.attrelname AND s.attname = i.attname
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
        ) AS rows_data_stats
    ) AS rows_hdr_pdg_stats
) AS relation_stats
WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%'
ORDER BY bloat_bytes DESC
