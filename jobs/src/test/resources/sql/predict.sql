-- Answers every prompt on a Kafka topic with the moestream model, inside the job.
SET 'table.exec.async-ml-predict.max-concurrent-operations' = '${concurrency}';

CREATE TABLE prompts (
  request_id STRING,
  tenant STRING,
  text STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${prompts-topic}',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'moestream-avro',
  'moestream-avro.record-type' = 'prompt'
);

CREATE TABLE generations (
  request_id STRING,
  tenant STRING,
  text STRING,
  finish_reason STRING,
  usage ROW<prompt_tokens INT, cached_tokens INT, generated_tokens INT>,
  timings ROW<queued_ms BIGINT, prefill_ms BIGINT, decode_ms BIGINT>,
  model STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${generations-topic}',
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
  'max-tokens' = '12',
  'temperature' = '0.8',
  'seed' = '7',
  'max-sequences' = '8'
);

CREATE TEMPORARY VIEW questions AS SELECT request_id, tenant, text AS prompt FROM prompts;

INSERT INTO generations
SELECT request_id, tenant, text, finish_reason,
       ROW(prompt_tokens, 0, completion_tokens),
       ROW(CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)),
       'moestream'
FROM ML_PREDICT(TABLE questions, MODEL moe, DESCRIPTOR(prompt));
