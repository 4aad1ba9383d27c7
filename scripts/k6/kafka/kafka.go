// Package kafka is the k6/x/kafka module that scripts/k6.sh builds into k6 for phasebench: the
// part of xk6-kafka's JavaScript API (github.com/mostafa/xk6-kafka, v1.x) that scenarios/k6 uses,
// on the same client library xk6-kafka v1 uses (segmentio/kafka-go).
//
// Why not xk6-kafka itself: the Go module proxy this project builds from answers 403 for every
// version of github.com/mostafa/xk6-kafka, so it cannot be fetched. The scripts use only names
// xk6-kafka exports, with the same meaning (scenarios/k6/types/xk6-kafka.d.ts declares them), so
// pointing scripts/k6.sh's KAFKA_EXTENSION pin at xk6-kafka runs them unchanged.
//
// Exports: Writer (produce, close), SchemaRegistry (serialize of SCHEMA_TYPE_STRING, no registry
// server), the BALANCER_* names and SCHEMA_TYPE_STRING. An option it does not implement (SASL,
// TLS, compression, a registry URL, another schema type) is refused with an error that names it,
// never silently ignored.
//
// Metrics, tagged with the topic, per produce() call:
//
//	kafka_writer_write_count    counter  produce() calls
//	kafka_writer_message_count  counter  messages the broker accepted
//	kafka_writer_message_bytes  counter  key + value bytes of those messages
//	kafka_writer_error_count    counter  messages that could not be written (produce() then throws)
//	kafka_writer_write_seconds  trend    how long produce() waited for the broker
package kafka

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/grafana/sobek"
	kafkago "github.com/segmentio/kafka-go"
	"go.k6.io/k6/js/common"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"
)

func init() {
	modules.Register("k6/x/kafka", new(rootModule))
}

// Balancer names as xk6-kafka spells them; each makes a fresh balancer, since some keep state.
var balancers = map[string]func() kafkago.Balancer{
	"balancer_roundrobin": func() kafkago.Balancer { return &kafkago.RoundRobin{} },
	"balancer_leastbytes": func() kafkago.Balancer { return &kafkago.LeastBytes{} },
	"balancer_hash":       func() kafkago.Balancer { return &kafkago.Hash{} },
	"balancer_crc32":      func() kafkago.Balancer { return &kafkago.CRC32Balancer{} },
	// Java's (and kafkajs's default) partitioner: a key lands on the partition it would from the
	// harness's own producers.
	"balancer_murmur2": func() kafkago.Balancer { return &kafkago.Murmur2Balancer{} },
}

// xk6-kafka's default when a Writer names no balancer.
const defaultBalancer = "balancer_leastbytes"

const schemaTypeString = "STRING"

type rootModule struct{}

type moduleInstance struct {
	vu      modules.VU
	metrics writerMetrics
}

type writerMetrics struct {
	writes, messages, bytes, errors, writeTime *metrics.Metric
}

// NewModuleInstance runs once per VU, in its init context, where the metric registry is.
func (*rootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	env := vu.InitEnv()
	if env == nil {
		common.Throw(vu.Runtime(), errors.New("k6/x/kafka can only be imported in the init context"))
	}
	registry := env.Registry
	return &moduleInstance{
		vu: vu,
		metrics: writerMetrics{
			writes:    registry.MustNewMetric("kafka_writer_write_count", metrics.Counter),
			messages:  registry.MustNewMetric("kafka_writer_message_count", metrics.Counter),
			bytes:     registry.MustNewMetric("kafka_writer_message_bytes", metrics.Counter, metrics.Data),
			errors:    registry.MustNewMetric("kafka_writer_error_count", metrics.Counter),
			writeTime: registry.MustNewMetric("kafka_writer_write_seconds", metrics.Trend, metrics.Time),
		},
	}
}

func (mi *moduleInstance) Exports() modules.Exports {
	named := map[string]any{
		"Writer":             mi.newWriter,
		"SchemaRegistry":     mi.newSchemaRegistry,
		"SCHEMA_TYPE_STRING": schemaTypeString,
	}
	for name, export := range map[string]string{
		"BALANCER_ROUND_ROBIN": "balancer_roundrobin",
		"BALANCER_LEAST_BYTES": "balancer_leastbytes",
		"BALANCER_HASH":        "balancer_hash",
		"BALANCER_CRC32":       "balancer_crc32",
		"BALANCER_MURMUR2":     "balancer_murmur2",
	} {
		named[name] = export
	}
	return modules.Exports{Named: named}
}

// --- Writer ---------------------------------------------------------------------------------

type writerConfig struct {
	brokers      []string
	topic        string
	balancer     string
	requiredAcks int64
	batchSize    int64
	batchTimeout time.Duration
	maxAttempts  int64
}

type writer struct {
	mi    *moduleInstance
	topic string
	kafka *kafkago.Writer
}

// newWriter is `new Writer({ brokers, topic, ... })`.
func (mi *moduleInstance) newWriter(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	config, err := parseWriterConfig(rt, call.Argument(0))
	if err != nil {
		common.Throw(rt, fmt.Errorf("new Writer: %w", err))
	}
	w := &writer{
		mi:    mi,
		topic: config.topic,
		kafka: &kafkago.Writer{
			Addr:         kafkago.TCP(config.brokers...),
			Topic:        config.topic,
			Balancer:     balancers[config.balancer](),
			RequiredAcks: kafkago.RequiredAcks(config.requiredAcks),
			BatchSize:    int(config.batchSize),
			BatchTimeout: config.batchTimeout,
			MaxAttempts:  int(config.maxAttempts),
			// Topics are created on purpose, with their partition counts (the broker refuses
			// auto-creation too).
			AllowAutoTopicCreation: false,
		},
	}
	object := rt.NewObject()
	mustSet(rt, object, "produce", w.produce)
	mustSet(rt, object, "close", w.close)
	return object
}

func parseWriterConfig(rt *sobek.Runtime, value sobek.Value) (writerConfig, error) {
	// xk6-kafka's defaults: one message per batch, no acknowledgement awaited (requiredAcks 0).
	config := writerConfig{balancer: defaultBalancer, batchSize: 1}
	if isNullish(value) {
		return config, errors.New("expected a config such as { brokers: ['127.0.0.1:9092'], topic: 'name' }")
	}
	object := value.ToObject(rt)
	for _, key := range object.Keys() {
		field := object.Get(key)
		var ok bool
		switch key {
		case "brokers":
			config.brokers, ok = strings(field)
			ok = ok && len(config.brokers) > 0
		case "topic":
			config.topic, ok = field.Export().(string)
			ok = ok && config.topic != ""
		case "balancer":
			config.balancer, ok = field.Export().(string)
			_, known := balancers[config.balancer]
			ok = ok && known
		case "requiredAcks":
			config.requiredAcks, ok = integer(field)
			ok = ok && config.requiredAcks >= -1 && config.requiredAcks <= 1
		case "batchSize":
			config.batchSize, ok = integer(field)
			ok = ok && config.batchSize > 0
		case "batchTimeout":
			// Nanoseconds, as xk6-kafka reads a Go time.Duration from a number.
			var ns int64
			ns, ok = integer(field)
			ok = ok && ns >= 0
			config.batchTimeout = time.Duration(ns)
		case "maxAttempts":
			config.maxAttempts, ok = integer(field)
			ok = ok && config.maxAttempts > 0
		default:
			return config, fmt.Errorf("option %q is not supported by phasebench's k6/x/kafka "+
				"(brokers, topic, balancer, requiredAcks, batchSize, batchTimeout, maxAttempts are)", key)
		}
		if !ok {
			return config, fmt.Errorf("option %q: unexpected value %s", key, field.String())
		}
	}
	if config.brokers == nil || config.topic == "" {
		return config, errors.New("brokers and topic are required")
	}
	return config, nil
}

// produce is `writer.produce({ messages: [{ key, value, headers }] })`: it returns once the broker
// has the messages (as requiredAcks asks) and throws when any could not be written.
func (w *writer) produce(call sobek.FunctionCall) sobek.Value {
	rt := w.mi.vu.Runtime()
	state := w.mi.vu.State()
	if state == nil {
		common.Throw(rt, errors.New("Writer.produce can only be called in VU code, not in the init context"))
	}
	messages, err := parseMessages(rt, call.Argument(0))
	if err != nil {
		common.Throw(rt, fmt.Errorf("Writer.produce: %w", err))
	}
	started := time.Now()
	writeErr := w.kafka.WriteMessages(w.mi.vu.Context(), messages...)
	elapsed := time.Since(started)

	failed := make([]bool, len(messages))
	var writeErrors kafkago.WriteErrors
	switch {
	case writeErr == nil:
	case errors.As(writeErr, &writeErrors) && len(writeErrors) == len(messages):
		for i, messageErr := range writeErrors {
			failed[i] = messageErr != nil
		}
	default:
		for i := range failed {
			failed[i] = true
		}
	}
	w.report(state, messages, failed, elapsed)
	if writeErr != nil {
		common.Throw(rt, fmt.Errorf("writing %d messages to %s failed: %w", len(messages), w.topic, writeErr))
	}
	return sobek.Undefined()
}

func (w *writer) report(state *lib.State, messages []kafkago.Message, failed []bool, elapsed time.Duration) {
	var written, bytes, errored float64
	for i, message := range messages {
		if failed[i] {
			errored++
			continue
		}
		written++
		bytes += float64(len(message.Key) + len(message.Value))
	}
	current := state.Tags.GetCurrentValues()
	tags := current.Tags.With("topic", w.topic)
	now := time.Now()
	sample := func(metric *metrics.Metric, value float64) metrics.Sample {
		return metrics.Sample{
			TimeSeries: metrics.TimeSeries{Metric: metric, Tags: tags},
			Time:       now,
			Value:      value,
			Metadata:   current.Metadata,
		}
	}
	metrics.PushIfNotDone(w.mi.vu.Context(), state.Samples, metrics.ConnectedSamples{
		Samples: []metrics.Sample{
			sample(w.mi.metrics.writes, 1),
			sample(w.mi.metrics.messages, written),
			sample(w.mi.metrics.bytes, bytes),
			sample(w.mi.metrics.errors, errored),
			sample(w.mi.metrics.writeTime, metrics.D(elapsed)),
		},
		Tags: tags,
		Time: now,
	})
}

func (w *writer) close(sobek.FunctionCall) sobek.Value {
	if err := w.kafka.Close(); err != nil {
		common.Throw(w.mi.vu.Runtime(), fmt.Errorf("Writer.close: %w", err))
	}
	return sobek.Undefined()
}

func parseMessages(rt *sobek.Runtime, value sobek.Value) ([]kafkago.Message, error) {
	if isNullish(value) {
		return nil, errors.New("expected { messages: [...] }")
	}
	config := value.ToObject(rt)
	for _, key := range config.Keys() {
		if key != "messages" {
			return nil, fmt.Errorf("option %q is not supported by phasebench's k6/x/kafka (messages is)", key)
		}
	}
	list := config.Get("messages")
	if isNullish(list) {
		return nil, errors.New("expected { messages: [...] }")
	}
	items := list.ToObject(rt)
	length := items.Get("length")
	n, ok := integer(length)
	if isNullish(length) || !ok || n < 1 {
		return nil, errors.New("messages must be a non-empty array")
	}
	messages := make([]kafkago.Message, n)
	for i := range messages {
		item := items.Get(fmt.Sprint(i))
		if isNullish(item) {
			return nil, fmt.Errorf("messages[%d] is missing", i)
		}
		message, err := parseMessage(rt, item.ToObject(rt))
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		messages[i] = message
	}
	return messages, nil
}

func parseMessage(rt *sobek.Runtime, object *sobek.Object) (kafkago.Message, error) {
	var message kafkago.Message
	for _, key := range object.Keys() {
		field := object.Get(key)
		var err error
		switch key {
		case "key":
			message.Key, err = bytesOf(field)
		case "value":
			message.Value, err = bytesOf(field)
		case "headers":
			message.Headers, err = headersOf(rt, field)
		default:
			err = errors.New("not supported by phasebench's k6/x/kafka (key, value, headers are)")
		}
		if err != nil {
			return message, fmt.Errorf("%s: %w", key, err)
		}
	}
	return message, nil
}

// bytesOf reads a key or value: what SchemaRegistry.serialize returned (a Uint8Array), or an
// ArrayBuffer. Plain strings are refused, as xk6-kafka refuses them.
func bytesOf(value sobek.Value) ([]byte, error) {
	if isNullish(value) {
		return nil, nil
	}
	switch exported := value.Export().(type) {
	case []byte:
		return exported, nil
	case sobek.ArrayBuffer:
		return exported.Bytes(), nil
	default:
		return nil, fmt.Errorf("expected bytes (from SchemaRegistry.serialize), found %s", value.String())
	}
}

// headersOf reads `{ name: value }`; values become their text, in name order.
func headersOf(rt *sobek.Runtime, value sobek.Value) ([]kafkago.Header, error) {
	if isNullish(value) {
		return nil, nil
	}
	object := value.ToObject(rt)
	names := object.Keys()
	sort.Strings(names)
	headers := make([]kafkago.Header, 0, len(names))
	for _, name := range names {
		headers = append(headers, kafkago.Header{Key: name, Value: []byte(object.Get(name).String())})
	}
	return headers, nil
}

// --- SchemaRegistry -------------------------------------------------------------------------

// newSchemaRegistry is `new SchemaRegistry()`: serialisation without a registry server.
func (mi *moduleInstance) newSchemaRegistry(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	if config := call.Argument(0); !isNullish(config) && len(config.ToObject(rt).Keys()) > 0 {
		common.Throw(rt, errors.New("new SchemaRegistry: a registry server is not supported by "+
			"phasebench's k6/x/kafka; call it without a config"))
	}
	object := rt.NewObject()
	mustSet(rt, object, "serialize", func(call sobek.FunctionCall) sobek.Value {
		serialized, err := serialize(rt, call.Argument(0))
		if err != nil {
			common.Throw(rt, fmt.Errorf("SchemaRegistry.serialize: %w", err))
		}
		return serialized
	})
	return object
}

// serialize is `serialize({ data, schemaType: SCHEMA_TYPE_STRING })`: the string's UTF-8 bytes
// as a Uint8Array.
func serialize(rt *sobek.Runtime, value sobek.Value) (sobek.Value, error) {
	if isNullish(value) {
		return nil, errors.New("expected { data, schemaType }")
	}
	container := value.ToObject(rt)
	for _, key := range container.Keys() {
		if key != "data" && key != "schemaType" {
			return nil, fmt.Errorf("option %q is not supported by phasebench's k6/x/kafka (data, schemaType are)", key)
		}
	}
	if schemaType := container.Get("schemaType"); isNullish(schemaType) || schemaType.String() != schemaTypeString {
		return nil, fmt.Errorf("schemaType must be SCHEMA_TYPE_STRING (%q), the only one phasebench's k6/x/kafka has",
			schemaTypeString)
	}
	data, ok := container.Get("data").Export().(string)
	if !ok {
		return nil, errors.New("data must be a string for SCHEMA_TYPE_STRING")
	}
	array, err := rt.New(rt.Get("Uint8Array"), rt.ToValue(rt.NewArrayBuffer([]byte(data))))
	if err != nil {
		return nil, err
	}
	return array, nil
}

// --- helpers --------------------------------------------------------------------------------

func mustSet(rt *sobek.Runtime, object *sobek.Object, name string, value any) {
	if err := object.Set(name, value); err != nil {
		common.Throw(rt, err)
	}
}

func isNullish(value sobek.Value) bool {
	return value == nil || sobek.IsUndefined(value) || sobek.IsNull(value)
}

// integer reads a JS number that is a whole number.
func integer(value sobek.Value) (int64, bool) {
	if isNullish(value) {
		return 0, false
	}
	switch n := value.Export().(type) {
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	}
	return 0, false
}

// strings reads an array of strings.
func strings(value sobek.Value) ([]string, bool) {
	items, ok := value.Export().([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], ok = item.(string); !ok {
			return nil, false
		}
	}
	return out, true
}
