-- tender_compute: per tender, the compute it claims and the compute its accelerator lines
-- ($accel_categories) give: card_count x FP16 dense TFLOPS, in PFLOPS.
CREATE TABLE tender_compute AS
SELECT tender_id,
    max(claimed_pflops) AS claimed_pflops,
    sum(card_count * fp16_dense_tflops) FILTER (WHERE category IN ($accel_categories)) / 1000.0
        AS actual_pflops,
    max(claimed_pflops)
        / nullif(sum(card_count * fp16_dense_tflops)
                 FILTER (WHERE category IN ($accel_categories)) / 1000.0, 0) AS claim_ratio,
    count(*) FILTER (WHERE category IN ($accel_categories)) AS accel_lines,
    coalesce(sum(card_count) FILTER (WHERE category IN ($accel_categories)), 0) AS cards,
    count(*) FILTER (WHERE category IN ($accel_categories) AND fp16_dense_tflops IS NULL)
        AS unknown_tflops_lines,
    min(item_id) FILTER (WHERE category IN ($accel_categories)) AS first_accel_item_id,
    -- lines that name an accelerator: a CPU server (管理节点服务器) is not compute
    list(item_id ORDER BY item_id) FILTER (
        WHERE category IN ($accel_categories) AND (accel_model IS NOT NULL OR is_domestic))
        AS accel_item_ids
FROM items
GROUP BY tender_id
