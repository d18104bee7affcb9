package fleet

import (
	"fmt"
	"strconv"
	"strings"
)

// user names: scenario users are named explicitly; generated user u is the initial of
// a first name, a last name and, past the first 26*len(lastNames) users, a number
// ("jmuller", "jmuller2"), so a name decodes back to its index without a map.

// userName returns the login name of user u.
func (f *Fleet) userName(u uint32) string {
	if int(u) < len(f.scenarioUsers) {
		return f.scenarioUsers[u].name
	}
	letter, last, n := f.userParts(u)
	name := string(rune('a'+letter)) + lastNames[last]
	if n > 0 {
		name += strconv.Itoa(n + 1)
	}
	return name
}

func (f *Fleet) userParts(u uint32) (letter, last, n int) {
	g := int(u) - len(f.scenarioUsers)
	letter = g % 26
	last = (g / 26) % len(lastNames)
	n = g / (26 * len(lastNames))
	return letter, last, n
}

// userFullName returns "John Doe" style names.
func (f *Fleet) userFullName(u uint32) string {
	if int(u) < len(f.scenarioUsers) {
		return f.scenarioUsers[u].fullName
	}
	letter, last, _ := f.userParts(u)
	firsts := firstNames[letter]
	first := firsts[hash(f.seed, 11, uint64(u))%uint64(len(firsts))]
	ln := lastNames[last]
	return first + " " + strings.ToUpper(ln[:1]) + ln[1:]
}

func (f *Fleet) userUPN(u uint32) string { return f.userName(u) + "@" + f.domain }

func (f *Fleet) userSID(u uint32) string {
	return fmt.Sprintf("%s-%d", f.sidPrefix, 1000+u)
}

func (f *Fleet) userDepartment(u uint32) string {
	if int(u) < len(f.scenarioUsers) {
		return f.scenarioUsers[u].department
	}
	return departments[hash(f.seed, 13, uint64(u))%uint64(len(departments))]
}

// userByName decodes a user name (case-insensitive) to its index.
func (f *Fleet) userByName(name string) (uint32, bool) {
	name = strings.ToLower(name)
	if u, ok := f.scenarioUserIdx[name]; ok {
		return u, true
	}
	if len(name) < 2 || name[0] < 'a' || name[0] > 'z' {
		return 0, false
	}
	letter := int(name[0] - 'a')
	rest := name[1:]
	end := len(rest)
	for end > 0 && rest[end-1] >= '0' && rest[end-1] <= '9' {
		end--
	}
	n := 0
	if end < len(rest) {
		v, err := strconv.Atoi(rest[end:])
		if err != nil || v < 2 || rest[end] == '0' {
			return 0, false
		}
		n = v - 1
	}
	last, ok := f.lastNameIdx[rest[:end]]
	if !ok {
		return 0, false
	}
	g := letter + 26*(last+len(lastNames)*n)
	u := uint32(g + len(f.scenarioUsers))
	if int(u) >= f.nUsers {
		return 0, false
	}
	return u, true
}

// userByUPN accepts "name@domain" (UPN and e-mail address are the same here).
func (f *Fleet) userByUPN(upn string) (uint32, bool) {
	name, domain, ok := strings.Cut(upn, "@")
	if !ok || !strings.EqualFold(domain, f.domain) {
		return 0, false
	}
	return f.userByName(name)
}

func (f *Fleet) userBySID(sid string) (uint32, bool) {
	rest, ok := strings.CutPrefix(sid, f.sidPrefix+"-")
	if !ok {
		return 0, false
	}
	rid, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || rid < 1000 || int(rid-1000) >= f.nUsers || strconv.FormatUint(rid, 10) != rest {
		return 0, false
	}
	return uint32(rid - 1000), true
}
