// kafkajs's admin client against a topic the test created with 2 partitions and 6 records
// on partition 0: createPartitions (to 4), alterConfigs then describeConfigs of the topic,
// deleteTopicRecords (partition 0 up to offset 4), fetchTopicOffsets. Prints what it saw.
//   node kafkajs_admin.js <broker> <topic>
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const [broker, topic] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'pinion-admin', brokers: [broker], logLevel: logLevel.ERROR });

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const out = {};
  await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  out.partitions = meta.topics[0].partitions.length;
  let bad = null;
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  } catch (e) {
    bad = e.type || e.message;
  }
  out.shrink = bad;
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{
      type: ConfigResourceTypes.TOPIC,
      name: topic,
      configEntries: [{ name: 'retention.ms', value: '123456' }],
    }],
  });
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
  });
  out.configs = {};
  for (const e of described.resources[0].configEntries) {
    out.configs[e.configName] = e.configValue;
  }
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] });
  out.offsets = (await admin.fetchTopicOffsets(topic))
    .map((p) => [p.partition, Number(p.low), Number(p.high)])
    .sort((a, b) => a[0] - b[0]);
  await admin.disconnect();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
