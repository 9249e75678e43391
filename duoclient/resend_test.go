package duoclient

import (
	"net/http"
	"testing"
)

// TestOnlyQuestionsAreSentAgain: of the Auth API calls only those
// without side effects may be sent a second time after their connection
// closed under them. The push (auth) never is: the first may have reached
// Duo, and the user would get two, one of which could approve a login
// nobody waits for. Calls ldapgate does not make are not sent again either.
func TestOnlyQuestionsAreSentAgain(t *testing.T) {
	for path, want := range map[string]bool{
		"/auth/v2/check":       true,
		"/auth/v2/preauth":     true,
		"/auth/v2/auth":        false,
		"/auth/v2/auth_status": false,
		"/auth/v2/enroll":      false,
		"/auth/v2/ping":        false,
	} {
		req, err := http.NewRequest(http.MethodPost, "https://api-test.duosecurity.com"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := sideEffectFree(req); got != want {
			t.Errorf("%s: sent again %v, want %v", path, got, want)
		}
	}
}
