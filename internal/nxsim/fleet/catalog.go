package fleet

// The catalogues below are read-only tables the generator draws from; nothing writes
// to them after package initialisation.

// osInfo is one operating system a device can run.
type osInfo struct {
	platform, name, version string
	weight                  int // relative share within its platform
}

var windowsOS = []osInfo{
	{"Windows", "Windows 11 Pro 23H2", "10.0.22631", 30},
	{"Windows", "Windows 11 Enterprise 23H2", "10.0.22631", 25},
	{"Windows", "Windows 11 Enterprise 24H2", "10.0.26100", 15},
	{"Windows", "Windows 10 Enterprise 22H2", "10.0.19045", 22},
	{"Windows", "Windows 10 Pro 22H2", "10.0.19045", 8},
}

var macOS = []osInfo{
	{"macOS", "macOS Sonoma", "14.6.1", 40},
	{"macOS", "macOS Sequoia", "15.3.2", 45},
	{"macOS", "macOS Ventura", "13.7.4", 15},
}

// model is one hardware model; kind is "laptop", "desktop" or "virtual".
type model struct {
	kind, manufacturer, name string
	mac                      bool
}

var models = []model{
	{"laptop", "Dell Inc.", "Latitude 5440", false},
	{"laptop", "Dell Inc.", "Latitude 7440", false},
	{"laptop", "LENOVO", "ThinkPad T14 Gen 4", false},
	{"laptop", "LENOVO", "ThinkPad X1 Carbon Gen 11", false},
	{"laptop", "HP", "EliteBook 840 G10", false},
	{"laptop", "Microsoft Corporation", "Surface Laptop 5", false},
	{"desktop", "Dell Inc.", "OptiPlex 7010", false},
	{"desktop", "HP", "EliteDesk 800 G9", false},
	{"desktop", "LENOVO", "ThinkCentre M70q Gen 4", false},
	{"virtual", "VMware, Inc.", "VMware20,1", false},
	{"virtual", "Microsoft Corporation", "Virtual Machine", false},
	{"laptop", "Apple Inc.", "MacBookPro18,3", true},
	{"laptop", "Apple Inc.", "Mac14,2", true},
	{"laptop", "Apple Inc.", "Mac15,3", true},
	{"desktop", "Apple Inc.", "Mac14,13", true},
}

var entities = []string{"Zurich", "Geneva", "Lausanne", "London", "Paris", "New York", "Singapore"}

var departments = []string{"Finance", "Sales", "Engineering", "Human Resources", "Marketing", "IT", "Legal", "Operations"}

// firstNames are grouped by initial so a user name's first letter fixes the initial of
// the full name ("jdoe" is John Doe).
var firstNames = [26][]string{
	{"Anna", "Adam", "Alice"}, {"Ben", "Bianca"}, {"Carla", "Chris"}, {"David", "Dora"},
	{"Emma", "Eric"}, {"Fatima", "Felix"}, {"Grace", "Gabriel"}, {"Hannah", "Hugo"},
	{"Ines", "Ivan"}, {"Julia", "Jonas"}, {"Kim", "Karl"}, {"Laura", "Luca"},
	{"Maria", "Marco"}, {"Nina", "Noah"}, {"Olivia", "Oscar"}, {"Paula", "Pablo"},
	{"Quinn", "Quentin"}, {"Rosa", "Ravi"}, {"Sara", "Samuel"}, {"Tina", "Tomas"},
	{"Uma", "Ulrich"}, {"Vera", "Victor"}, {"Wendy", "William"}, {"Xenia", "Xavier"},
	{"Yara", "Yusuf"}, {"Zoe", "Zeno"},
}

// lastNames never include a scenario user's last name, so a generated user name never
// equals a scenario user name. Each must be lowercase letters only.
var lastNames = []string{
	"muller", "meier", "schmid", "keller", "weber", "huber", "schneider", "meyer",
	"steiner", "fischer", "gerber", "brunner", "baumann", "frei", "zimmermann", "moser",
	"widmer", "wyss", "graf", "roth", "garcia", "martin", "bernard", "dubois", "moreau",
	"laurent", "simon", "michel", "lefebvre", "leroy", "rossi", "russo", "ferrari",
	"esposito", "bianchi", "romano", "colombo", "ricci", "marino", "greco", "jones",
	"taylor", "brown", "williams", "wilson", "johnson", "davies", "robinson", "wright",
	"thompson", "evans", "walker", "white", "roberts", "green", "hall", "wood", "jackson",
	"clarke", "patel", "khan", "lewis", "james", "phillips", "mason", "mitchell", "rose",
	"davis", "rodriguez", "lopez", "gonzalez", "perez", "sanchez", "ramirez", "torres",
	"nguyen", "tran", "le", "pham", "kim", "lee", "park", "choi", "wang", "li", "zhang",
	"liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu",
	"guo", "he", "lin", "luo", "tanaka", "suzuki", "sato", "takahashi", "watanabe", "ito",
	"yamamoto", "nakamura", "kobayashi", "kato", "novak", "horvat", "kovac", "nagy",
	"szabo", "toth", "kowalski", "nowak", "wisniewski", "jansen", "dejong", "devries",
	"bakker", "visser", "smit", "mulder", "bos", "vos", "peeters", "maes", "jacobs",
	"mertens", "willems", "claes", "goossens", "wouters", "lambert", "dupont",
	"olsen", "hansen", "nielsen", "jensen", "andersen", "pedersen", "larsen", "berg",
	"lindqvist", "nilsson", "eriksson", "karlsson", "persson", "svensson", "gustafsson",
	"silva", "santos", "ferreira", "pereira", "oliveira", "costa", "rodrigues", "almeida",
	"murphy", "kelly", "obrien", "ryan", "walsh", "byrne", "oconnor", "doyle", "mccarthy",
}

// pkg is an installed package: name, publisher and the platforms that have it.
type pkg struct {
	name, publisher string
	versions        []string
	windows, mac    bool
	share           float64 // share of devices of its platforms that have it
}

var commonPackages = []pkg{
	{"Google Chrome", "Google LLC", []string{"126.0.6478.127", "127.0.6533.100", "128.0.6613.120"}, true, true, 0.8},
	{"Mozilla Firefox", "Mozilla", []string{"128.0.3", "129.0.2"}, true, true, 0.25},
	{"Zoom Workplace", "Zoom Video Communications, Inc.", []string{"6.1.5", "6.2.0"}, true, true, 0.5},
	{"Slack", "Slack Technologies Inc.", []string{"4.39.95", "4.40.113"}, true, true, 0.4},
	{"Adobe Acrobat Reader", "Adobe", []string{"24.002.20991", "24.003.20054"}, true, true, 0.6},
	{"7-Zip 23.01 (x64)", "Igor Pavlov", []string{"23.01"}, true, false, 0.5},
	{"Microsoft Teams", "Microsoft Corporation", []string{"24165.1414.2987.41", "24193.1805.3040.8975"}, true, true, 0.9},
	{"Microsoft OneDrive", "Microsoft Corporation", []string{"24.151.0728.0003", "24.161.0811.0001"}, true, true, 0.9},
	{"Spotify", "Spotify AB", []string{"1.2.42.290"}, true, true, 0.15},
	{"Cisco Secure Client", "Cisco Systems, Inc.", []string{"5.1.4.74"}, true, true, 0.6},
}

// Office packages. The topics' queries look for "Microsoft Office" or "Microsoft 365"
// whose version is not 16.*.
const (
	officeNone     uint8 = iota // no Office (macOS devices get Outlook instead)
	office365                   // "Microsoft 365" 16.0.x: up to date
	office2016                  // "Microsoft Office" 16.0.4266: 16.x, counts as current
	officeOutdated              // "Microsoft 365" 15.0.4569: outdated
	officeRepaired              // "Microsoft 365" officeCurrentVersion, after a repair
)

// officeCurrentVersion is the version a successful #repair_office_365 installs.
const officeCurrentVersion = "16.0.17928.20114"

var office365Versions = []string{"16.0.17726.20160", "16.0.17830.20138", "16.0.17928.20114"}

// Data-collection outputs.
var crashedPlugins = []string{"-", "Grammarly", "Zoom Outlook Plugin", "Adobe Acrobat PDFMaker Office COM Addin", "Cisco Webex Meetings"}

// OneDrive statuses, the first one healthy.
var oneDriveStatuses = []string{
	"OneDrive is running",
	"OneDrive is not installed",
	"OneDrive is installed but not running",
	"OneDrive environment variable does not exist",
	"OneDrive folder is not present",
}

// startupProfiles are the high-impact startup application lists, the first empty.
var startupProfiles = []string{
	"",
	"Spotify,Teams Machine-Wide Installer",
	"Spotify",
	"Adobe Creative Cloud",
	"Dropbox,Spotify,Skype",
}

var printers = []string{"HP LaserJet M507 (Floor 2)", "Canon iR-ADV C5535 (Reception)", "Microsoft Print to PDF", "Xerox VersaLink C405 (Finance)"}

// crashProfile is a binary and its application that crash on some devices.
type crashProfile struct{ binary, application string }

var crashProfiles = []crashProfile{
	{},
	{"outlook.exe", "Microsoft Outlook"},
	{"teams.exe", "Microsoft Teams"},
	{"chrome.exe", "Google Chrome"},
	{"excel.exe", "Microsoft Excel"},
}
