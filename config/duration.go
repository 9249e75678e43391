package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/ldapgate/ldapgate/internal/human"
)

var durationType = reflect.TypeFor[time.Duration]()

// bareNumber is a number as written, without a unit: "3", "-2", "1.5".
var bareNumber = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)

// durationHook decodes every time.Duration of Config. Only a string with a
// unit is a duration: a bare number is an error that says what to write,
// because authproxy.cfg writes seconds as `timeout=3` and a plain decode
// reads that as 3 nanoseconds.
//
// A lenient hook decodes a bad duration as 0 instead, which applyDefaults
// then fills; Parse uses it only to validate the rest of a file whose
// strict decode already failed and reported that duration.
func durationHook(lenient bool) mapstructure.DecodeHookFuncType {
	return func(_, to reflect.Type, data any) (any, error) {
		if to != durationType {
			return data, nil
		}
		d, err := parseDuration(data)
		if err != nil && lenient {
			return time.Duration(0), nil
		}
		return d, err
	}
}

func parseDuration(data any) (time.Duration, error) {
	if s, ok := data.(string); ok {
		if bareNumber.MatchString(s) {
			return 0, noUnit(s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, notDuration(strconv.Quote(s))
		}
		return d, nil
	}
	v := reflect.ValueOf(data)
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()), nil
	case v.CanInt():
		return 0, noUnit(strconv.FormatInt(v.Int(), 10))
	case v.CanUint():
		return 0, noUnit(strconv.FormatUint(v.Uint(), 10))
	case v.CanFloat():
		return 0, noUnit(strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits()))
	}
	return 0, notDuration(fmt.Sprint(data))
}

func noUnit(number string) error {
	return fmt.Errorf("%s has no unit; write %ss", number, number)
}

func notDuration(shown string) error {
	return fmt.Errorf("%s is not a duration; write it with a unit, like 10s or 1m30s", shown)
}

// checkRange records a problem unless lo <= d <= hi. A key whose value
// could not be decoded has its problem already and is not judged again.
func checkRange(p *Problems, path string, d, lo, hi time.Duration) {
	if p.has(path) || (lo <= d && d <= hi) {
		return
	}
	outOfRange(p, path, d, human.Duration(lo)+" to "+human.Duration(hi))
}

func outOfRange(p *Problems, path string, d time.Duration, allowed string) {
	p.add(path, ErrInvalid, "%s is out of range; allowed %s", human.Duration(d), allowed)
}
