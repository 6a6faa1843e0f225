-- `moestream demo --sql`: the demo's prompts on moe.prompts answered through ML_PREDICT with the
-- moestream model provider, the answers written to moe.generations. SQL prompts are stateless
-- (docs/sql.md): a DOCUMENT or CONVERSATION prompt is answered from its own text alone.
SET 'table.exec.async-ml-predict.max-concurrent-operations' = '16';

CREATE TABLE prompts (
  request_id STRING,
  tenant STRING,
  context_id STRING,
  text STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'moe.prompts',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'moestream-avro',
  'moestream-avro.record-type' = 'prompt',
  'moestream-avro.ignore-parse-errors' = 'true'
);

CREATE TABLE generations (
  request_id STRING,
  tenant STRING,
  context_id STRING,
  text STRING,
  finish_reason STRING,
  usage ROW<prompt_tokens INT, cached_tokens INT, generated_tokens INT>,
  timings ROW<queued_ms BIGINT, prefill_ms BIGINT, decode_ms BIGINT>,
  model STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'moe.generations',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'sink.delivery-guarantee' = 'at-least-once',
  'format' = 'moestream-avro',
  'moestream-avro.record-type' = 'generation'
);

CREATE MODEL moe
INPUT (prompt STRING)
OUTPUT (text STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT)
WITH (
  'provider' = 'moestream',
  'model-path' = '${model-path}',
  'max-tokens' = '${max-tokens}',
  'seed' = '42'
);

CREATE TEMPORARY VIEW questions AS SELECT request_id, tenant, context_id, text AS prompt FROM prompts;

INSERT INTO generations
SELECT request_id, tenant, context_id, text, finish_reason,
       ROW(prompt_tokens, 0, completion_tokens),
       ROW(CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)),
       'moestream'
FROM ML_PREDICT(TABLE questions, MODEL moe, DESCRIPTOR(prompt));
