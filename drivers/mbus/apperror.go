package mbus

import "fmt"

// ApplicationError is a meter's report (CI 0x70) that it could not answer
// with data, EN 13757-3 "general application errors".
type ApplicationError struct {
	Code byte
}

var appErrorText = [...]string{
	0: "unspecified error",
	1: "unimplemented CI field",
	2: "buffer too long, truncated",
	3: "too many records",
	4: "premature end of record",
	5: "more than 10 DIFEs",
	6: "more than 10 VIFEs",
	7: "reserved",
	8: "application too busy for handling readout request",
	9: "too many readouts",
}

// Text is the standard's description of the error code.
func (e *ApplicationError) Text() string {
	if int(e.Code) < len(appErrorText) {
		return appErrorText[e.Code]
	}
	return "reserved"
}

func (e *ApplicationError) Error() string {
	return fmt.Sprintf("mbus: meter reports application error %d: %s", e.Code, e.Text())
}

// appError builds the error of a CI 0x70 telegram: no data byte means an
// unspecified error.
func appError(data []byte) error {
	if len(data) == 0 {
		return &ApplicationError{}
	}
	return &ApplicationError{Code: data[0]}
}
