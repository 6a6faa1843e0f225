-- java -jar jobs/target/moestream.jar sql -f docs/examples/answer-prompts.sql
-- Writes two prompts to moe.prompts, answers every prompt there with the model inside the job,
-- writes the answers to moe.generations (readable by `moestream consume`) and prints them.
SET 'table.exec.async-ml-predict.max-concurrent-operations' = '16';

CREATE TABLE prompts (
  request_id STRING,
  tenant STRING,
  text STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'moe.prompts',
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
  'topic' = 'moe.generations',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'sink.delivery-guarantee' = 'at-least-once',
  'format' = 'moestream-avro',
  'moestream-avro.record-type' = 'generation'
);

CREATE MODEL moe
INPUT (prompt STRING)
OUTPUT (text STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT)
WITH (
  'provider' = 'moestream',
  'max-tokens' = '24',
  'temperature' = '0.7',
  'seed' = '42'
);

INSERT INTO prompts VALUES ('r1', 'acme', 'What is a list?'), ('r2', 'acme', 'Tell me about Flink.');

CREATE TEMPORARY VIEW questions AS SELECT request_id, tenant, text AS prompt FROM prompts;

INSERT INTO generations
SELECT request_id, tenant, text, finish_reason,
       ROW(prompt_tokens, 0, completion_tokens),
       ROW(CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)),
       'moestream'
FROM ML_PREDICT(TABLE questions, MODEL moe, DESCRIPTOR(prompt));

SELECT request_id, finish_reason, usage.generated_tokens, text FROM generations;
