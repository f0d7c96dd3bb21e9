package mbus

// EN 13757-3 allows at most 10 DIFEs and 10 VIFEs in one record.
const maxExtensions = 10

var functionNames = [4]string{FuncInstantaneous, FuncMaximum, FuncMinimum, FuncError}

// decodeRecords appends the data records in f[off:end] to fields.
// msbFirst is mode 2 (CI 0x76): multi-byte data fields are sent most
// significant byte first.
func decodeRecords(f []byte, off, end int, msbFirst bool, d *Decoder, fields []Field, tx *text) ([]Field, error) {
	for off < end {
		dif := f[off]
		switch {
		case dif == 0x2F: // idle filler
			off++
			continue
		case dif == 0x0F || dif == 0x1F:
			// Manufacturer specific data up to the end of the telegram.
			r := Field{Function: FuncManufacturerSpecific, Offset: off, Value: Value{Kind: ValueText}, vtext: tx.hexBytes(f[off+1 : end])}
			if dif == 0x1F {
				r.Function = FuncMoreRecordsFollow
				d.More = true
			}
			return append(fields, r), nil
		case dif&0x0F == 0x0F:
			return fields, errAt(off, "DIF 0x%02X is a reserved special function", dif)
		}
		var r Field
		next, err := decodeRecord(f, off, end, msbFirst, &r, tx)
		if err != nil {
			return fields, err
		}
		fields = append(fields, r)
		off = next
	}
	return fields, nil
}

// decodeRecord decodes the record whose DIF is at f[off] into r and
// returns the offset after it.
func decodeRecord(f []byte, off, end int, msbFirst bool, r *Field, tx *text) (int, error) {
	r.Offset = off
	dif := f[off]
	coding := dif & 0x0F
	r.Function = functionNames[dif>>4&3]
	storage := int64(dif >> 6 & 1)
	var tariff, device int64
	ext := dif&0x80 != 0
	off++
	for n := 0; ext; n++ {
		if off >= end {
			return 0, errAt(off, "record at byte %d ends after its DIF/DIFEs", r.Offset)
		}
		if n == maxExtensions {
			return 0, errAt(off, "record at byte %d has more than %d DIFEs", r.Offset, maxExtensions)
		}
		dife := f[off]
		storage |= int64(dife&0x0F) << (1 + 4*n)
		tariff |= int64(dife>>4&3) << (2 * n)
		device |= int64(dife>>6&1) << n
		ext = dife&0x80 != 0
		off++
	}
	r.Storage, r.Tariff, r.Device = int(storage), int(tariff), int(device)

	var vi valueInfo
	next, err := decodeVIB(f, off, end, r.Offset, &vi, tx)
	if err != nil {
		return 0, err
	}
	off = next
	r.Quantity, r.qtext, r.Unit = vi.quantity, vi.qtext, vi.unit

	next, err = decodeData(f, off, end, coding, msbFirst, &vi, r, tx)
	if err != nil {
		return 0, err
	}
	return next, nil
}

// decodeVIB decodes the VIF and its VIFEs at f[off] into vi.
func decodeVIB(f []byte, off, end, rec int, vi *valueInfo, tx *text) (int, error) {
	if off >= end {
		return 0, errAt(off, "record at byte %d ends before its VIF", rec)
	}
	vif := f[off]
	off++
	ext := vif&0x80 != 0
	switch vif & 0x7F {
	case 0x7B, 0x7D:
		if !ext {
			*vi = num("Reserved", "", 0)
			break
		}
		if off >= end {
			return 0, errAt(off, "record at byte %d ends after VIF 0x%02X, before its extension", rec, vif)
		}
		e := f[off]
		off++
		if vif == 0xFB {
			*vi = fbVIFs[e&0x7F]
		} else {
			*vi = fdVIFs[e&0x7F]
		}
		ext = e&0x80 != 0
	case 0x7C:
		// Plain-text unit: a length byte and that many ASCII characters,
		// last character first.
		if off >= end {
			return 0, errAt(off, "record at byte %d ends before the length of its plain-text VIF", rec)
		}
		n := int(f[off])
		off++
		if n > end-off {
			return 0, errAt(off, "plain-text VIF of record at byte %d says %d characters, only %d bytes left", rec, n, end-off)
		}
		*vi = valueInfo{qtext: tx.reversed(f[off : off+n]), unit: "-", mult: 1}
		off += n
	default:
		*vi = primaryVIFs[vif&0x7F]
	}
	manufacturer := vif == 0xFF
	// VIFEs that qualify the quantity append to it in tx.
	qstart := -1
	for n := 0; ext; n++ {
		if off >= end {
			return 0, errAt(off, "record at byte %d ends inside its VIFEs", rec)
		}
		if n == maxExtensions {
			return 0, errAt(off, "record at byte %d has more than %d VIFEs", rec, maxExtensions)
		}
		e := f[off]
		off++
		ext = e&0x80 != 0
		if !manufacturer {
			if qstart < 0 {
				qstart = tx.mark()
				if vi.qtext.ok {
					tx.b = append(tx.b, tx.b[vi.qtext.start:vi.qtext.end]...)
				} else {
					tx.writeString(vi.quantity)
				}
			}
			manufacturer = applyVIFE(e&0x7F, vi, tx)
		}
	}
	if qstart >= 0 {
		vi.qtext = tx.from(qstart)
	}
	return off, nil
}

// reversed writes characters sent last-first in the order read.
func (t *text) reversed(b []byte) span {
	start := t.mark()
	for i := len(b) - 1; i >= 0; i-- {
		t.writeByte(b[i])
	}
	return t.from(start)
}
