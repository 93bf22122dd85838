package report

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// kind is how a column's cells are written.
type kind uint8

const (
	kindText   kind = iota
	kindInt         // sequence, count: an integer
	kindAmount      // minor units: a decimal in major units (cell.n with the file's exponent)
	kindTime        // an instant: RFC 3339 UTC with six fraction digits; XLSX a date-time
	kindDate        // a ledger date: YYYY-MM-DD; XLSX a date
)

// column is one column of a file.
type column struct {
	en, nb string
	kind   kind
}

func (c column) title(lang string) string {
	if lang == LangNB {
		return c.nb
	}
	return c.en
}

// cell is one value; which field counts depends on the column's kind.
type cell struct {
	s string
	n int64
	t time.Time
	d ledger.Date
}

// tableWriter writes a header and rows, then close flushes everything to
// the underlying writer. Rows' cells come in column order.
type tableWriter interface {
	header(cols []column, lang string) error
	row(cells []cell) error
	close() error
}

// newTableWriter returns the writer of format onto w. exp is the currency
// exponent of the amount columns.
func newTableWriter(format string, w io.Writer, exp int, tmpDir string) (tableWriter, error) {
	switch format {
	case FormatCSV:
		return newCSVWriter(w, exp), nil
	case FormatXLSX:
		return newXLSXWriter(w, exp, tmpDir)
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// ---- CSV: UTF-8, RFC 4180 (CRLF line ends, quotes where needed), a header row.

type csvWriter struct {
	bw   *bufio.Writer
	cw   *csv.Writer
	exp  int
	cols []column
	rec  []string
	buf  []byte
}

func newCSVWriter(w io.Writer, exp int) *csvWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	return &csvWriter{bw: bw, cw: cw, exp: exp}
}

func (c *csvWriter) header(cols []column, lang string) error {
	c.cols = cols
	c.rec = make([]string, len(cols))
	for i, col := range cols {
		c.rec[i] = col.title(lang)
	}
	return c.cw.Write(c.rec)
}

// TimeFormat is how files write instants, as the API does.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

func (c *csvWriter) row(cells []cell) error {
	for i, col := range c.cols {
		v := cells[i]
		switch col.kind {
		case kindText:
			c.rec[i] = v.s
		case kindInt:
			c.rec[i] = strconv.FormatInt(v.n, 10)
		case kindAmount:
			c.buf = AppendAmount(c.buf[:0], v.n, c.exp)
			c.rec[i] = string(c.buf)
		case kindTime:
			c.buf = v.t.UTC().AppendFormat(c.buf[:0], TimeFormat)
			c.rec[i] = string(c.buf)
		case kindDate:
			c.buf = v.d.AppendFormat(c.buf[:0])
			c.rec[i] = string(c.buf)
		}
	}
	return c.cw.Write(c.rec)
}

func (c *csvWriter) close() error {
	c.cw.Flush()
	if err := c.cw.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// ---- XLSX: excelize's stream writer (rows go to a temp file, not memory),
// typed cells with number formats, a frozen bold header row.

// MaxXLSXRows is the most data rows an XLSX sheet holds (1,048,576 rows
// less the header).
const MaxXLSXRows = excelize.TotalRows - 1

// exactFloatLimit bounds the minor amounts written as XLSX numbers: below
// 10^15 the shortest decimal of float64(minor)/10^exp is exactly the
// decimal amount. Larger ones (no real ledger has them) are written as text
// to stay exact.
const exactFloatLimit = 1_000_000_000_000_000

type xlsxWriter struct {
	w    io.Writer
	f    *excelize.File
	sw   *excelize.StreamWriter
	exp  int
	cols []column
	n    int // rows written, the header included
	vals []any
	cs   []excelize.Cell

	sAmount, sTime, sDate, sText int
	pow                          float64
}

const sheetName = "Report"

// excelEpochDays is 1970-01-01 as an Excel serial date (1900 date system).
const excelEpochDays = 25569

func newXLSXWriter(w io.Writer, exp int, tmpDir string) (*xlsxWriter, error) {
	f := excelize.NewFile(excelize.Options{TmpDir: tmpDir})
	// excelize's Write buffers the whole zip in memory; its zip writer is
	// given w instead, so the file streams out (and its buffer stays
	// empty). BestSpeed deflate: XLSX XML compresses well even so, and
	// compression is most of the time otherwise.
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		return zw
	})
	x := &xlsxWriter{w: w, f: f, exp: exp, pow: 1}
	for range exp {
		x.pow *= 10
	}
	if err := f.SetSheetName("Sheet1", sheetName); err != nil {
		f.Close()
		return nil, err
	}
	amountFmt := "0"
	if exp > 0 {
		amountFmt = "0." + fmt.Sprintf("%0*d", exp, 0)
	}
	styles := []struct {
		dst *int
		s   *excelize.Style
	}{
		{&x.sAmount, &excelize.Style{CustomNumFmt: &amountFmt}},
		{&x.sTime, &excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd hh:mm:ss.000")}},
		{&x.sDate, &excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd")}},
		{&x.sText, &excelize.Style{Font: &excelize.Font{Bold: true}}},
	}
	for _, st := range styles {
		id, err := f.NewStyle(st.s)
		if err != nil {
			f.Close()
			return nil, err
		}
		*st.dst = id
	}
	sw, err := f.NewStreamWriter(sheetName)
	if err != nil {
		f.Close()
		return nil, err
	}
	x.sw = sw
	return x, nil
}

func ptr[T any](v T) *T { return &v }

func (x *xlsxWriter) header(cols []column, lang string) error {
	x.cols = cols
	x.vals = make([]any, len(cols))
	x.cs = make([]excelize.Cell, len(cols))
	if err := x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}}}); err != nil {
		return err
	}
	for i, col := range cols {
		w := 14.0
		switch col.kind {
		case kindTime:
			w = 20
		case kindText:
			w = 18
		}
		if err := x.sw.SetColWidth(i+1, i+1, w); err != nil {
			return err
		}
		x.cs[i] = excelize.Cell{StyleID: x.sText, Value: col.title(lang)}
		x.vals[i] = x.cs[i]
	}
	return x.next()
}

func (x *xlsxWriter) next() error {
	x.n++
	if x.n > excelize.TotalRows {
		return errTooManyRows
	}
	return x.sw.SetRow("A"+strconv.Itoa(x.n), x.vals)
}

var errTooManyRows = fmt.Errorf("%w: more than %d rows do not fit an XLSX sheet; ask for csv or a shorter date range", ledger.ErrInvalid, MaxXLSXRows)

func (x *xlsxWriter) row(cells []cell) error {
	for i, col := range x.cols {
		v := cells[i]
		c := excelize.Cell{}
		switch col.kind {
		case kindText:
			c.Value = v.s
		case kindInt:
			c.Value = v.n
		case kindAmount:
			if v.n < exactFloatLimit && v.n > -exactFloatLimit {
				c.StyleID, c.Value = x.sAmount, float64(v.n)/x.pow
			} else {
				c.Value = FormatAmount(v.n, x.exp)
			}
		case kindTime:
			// Excel's serial date: days since 1899-12-30, UTC.
			c.StyleID, c.Value = x.sTime, excelEpochDays+float64(v.t.UnixMicro())/(86400*1e6)
		case kindDate:
			c.StyleID, c.Value = x.sDate, excelEpochDays+float64(v.d)
		}
		x.cs[i] = c
		x.vals[i] = &x.cs[i]
	}
	return x.next()
}

func (x *xlsxWriter) close() error {
	err := x.sw.Flush()
	if err == nil {
		var buf *bytes.Buffer
		buf, err = x.f.WriteToBuffer()
		if err == nil && buf.Len() > 0 {
			err = errors.New("xlsx: the zip went to a buffer, not the file")
		}
	}
	return errors.Join(err, x.f.Close())
}
