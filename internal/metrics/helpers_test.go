package metrics_test

import (
	"io"
	"strings"
	"testing"

	"github.com/quillpay/quill/internal/metrics"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// histogram returns the sample count and sum of the unlabelled histogram name.
func histogram(tb testing.TB, m *metrics.Metrics, name string) (uint64, float64) {
	tb.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	tb.Fatalf("no metric %s", name)
	return 0, 0
}

// gauge returns the value of the unlabelled gauge name.
func gauge(tb testing.TB, m *metrics.Metrics, name string) float64 {
	tb.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	tb.Fatalf("no metric %s", name)
	return 0
}
