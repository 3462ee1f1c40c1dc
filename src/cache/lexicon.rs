//! Word lists of the structural guards (English). General vocabulary, not a list of test phrases:
//! function words, request framing, antonym axes, negation cues, number words, units, task verbs.

/// Function words: they never make two questions different on their own.
#[rustfmt::skip]
pub fn is_stopword(w: &str) -> bool {
    matches!(
        w,
        "a" | "an"
            | "the" | "this" | "that" | "these" | "those" | "there" | "here" | "i" | "me" | "my"
            | "mine" | "myself" | "we" | "us" | "our" | "ours" | "you" | "your" | "yours"
            | "yourself" | "he" | "him" | "his" | "she" | "her" | "hers" | "it" | "its" | "itself"
            | "they" | "them" | "their" | "theirs" | "what" | "which" | "who" | "whom" | "whose"
            | "when" | "where" | "why" | "how" | "whether" | "is" | "are" | "was" | "were" | "be"
            | "been" | "being" | "am" | "do" | "does" | "did" | "doing" | "done" | "have" | "has"
            | "had" | "having" | "can" | "could" | "would" | "should" | "will" | "shall" | "may"
            | "might" | "must" | "of" | "in" | "on" | "at" | "by" | "for" | "with" | "about" | "as"
            | "to" | "onto" | "via" | "per" | "then" | "so" | "such" | "and" | "or" | "but" | "if"
            | "because" | "while" | "also" | "too" | "very" | "some" | "any" | "each" | "every"
            | "all" | "both" | "other" | "another" | "same" | "own" | "only" | "again" | "s" | "t"
            | "ll" | "d" | "re" | "ve" | "m" | "let" | "lets" | "im" | "ive" | "id" | "whats"
            | "hows" | "whos" | "wheres" | "many" | "much" | "into" | "between" | "among"
            | "through" | "during" | "within" | "across" | "around" | "against" | "than" | "vs"
            | "versus" | "instead" | "rather" | "etc" | "eg" | "ie" | "yet" | "even" | "still"
            | "already" | "ever" | "something" | "anything" | "everything" | "someone" | "anyone"
            | "everyone" | "somebody" | "anybody" | "whatever" | "whichever" | "whoever" | "one's"
            | "oneself"
    )
}

/// Request framing: words that change how a question is asked, not what it asks.
#[rustfmt::skip]
pub fn is_generic(w: &str) -> bool {
    matches!(
        w,
        "please" | "kindly" | "tell" | "show" | "explain" | "explanation" | "describe"
        | "description" | "give" | "provide" | "help" | "need" | "want" | "like" | "know" | "get"
        | "way" | "ways" | "step" | "steps" | "process" | "procedure" | "method" | "instruction"
        | "instructions" | "guide" | "guidance" | "tutorial" | "tip" | "tips" | "easy" | "easiest"
        | "easily" | "simple" | "simply" | "simplest" | "possible" | "exactly" | "actually"
        | "really" | "basically" | "just" | "thing" | "things" | "question" | "mean" | "means"
        | "meaning" | "definition" | "define" | "term" | "concept" | "idea" | "detail" | "details"
        | "detailed" | "information" | "info" | "proper" | "properly" | "correct" | "correctly"
        | "right" | "go" | "able" | "guys" | "hi" | "hello" | "hey" | "thanks" | "thank" | "okay"
        | "ok" | "sure" | "text" | "article" | "document" | "passage" | "content" | "piece"
        | "following" | "below" | "above" | "provided" | "given" | "attached" | "here's" | "heres"
        | "recommended" | "recommend" | "suggest" | "advice" | "advise" | "anyway" | "currently"
        | "now" | "today" | "specific" | "specifically" | "particular" | "good" | "best" | "better"
        | "quick" | "quickly" | "fast" | "overview" | "someone's" | "kind" | "type" | "bit"
        | "little" | "lot" | "lots"
        // "convert X to Y" asks what "X in Y" asks; "using Y" what "with Y" asks.
        | "convert" | "using"
    )
}

/// Canonical form of words that mean the same in a request. Applied before stemming.
#[rustfmt::skip]
pub fn synonym(w: &str) -> Option<&'static str> {
    Some(match w {
        "summarise" | "summary" | "summaries" | "summarization" | "summarisation"
        | "summarizing" | "summarising" | "summarized" | "summarised" | "tldr" | "recap"
        | "gist" | "condense" | "synopsis" | "summarize" => "summarize",
        "translation" | "translating" | "translated" | "translate" => "translate",
        "enumerate" | "bullet" | "bullets" | "bulleted" | "list" | "listing" | "lists" => "list",
        "rephrase" | "paraphrase" | "reword" | "rework" | "rewrite" | "rewording" => "rewrite",
        "proofread" | "proofreading" | "copyedit" => "proofread",
        "categorize" | "categorise" | "classify" | "classification" | "categorization" => {
            "classify"
        }
        "headline" | "title" | "titles" | "headlines" => "title",
        "keywords" | "keyword" | "tags" | "hashtags" => "keyword",
        "critique" | "review" | "feedback" | "evaluate" | "assess" => "critique",
        "analyse" | "analysis" | "analyze" | "analyzing" | "analysing" => "analyze",
        "compose" | "draft" | "write" | "writing" | "written" => "write",
        "fix" | "repair" | "resolve" | "solve" | "troubleshoot" | "fixing" | "solving" => "fix",
        "issue" | "issues" | "problem" | "problems" | "trouble" => "problem",
        "make" | "making" | "create" | "creating" | "build" | "building" | "generate"
        | "generating" | "produce" => "create",
        "purchase" | "buy" | "buying" | "bought" | "purchasing" => "buy",
        "price" | "prices" | "cost" | "costs" | "pricing" => "cost",
        "photo" | "photos" | "image" | "images" | "picture" | "pictures" | "pic" => "picture",
        "film" | "films" | "movie" | "movies" => "movie",
        "utilize" | "utilise" | "employ" | "use" | "used" => "use",
        "modify" | "alter" | "change" | "changing" | "changed" => "change",
        "reply" | "respond" | "response" | "answer" | "answers" => "reply",
        "child" | "children" | "kid" | "kids" => "child",
        "physician" | "doctor" | "doctors" => "doctor",
        "difference" | "differences" | "differ" | "different" | "compare" | "comparison"
        | "comparing" => "compare",
        "learn" | "learning" | "study" | "studying" => "learn",
        "automobile" | "car" | "cars" => "car",
        "smartphone" | "phone" | "phones" | "cellphone" => "phone",
        "program" | "programme" | "app" | "application" => "program",
        _ => return None,
    })
}

/// Canonical words that name the task of a request (its kind of output).
#[rustfmt::skip]
pub fn is_task(w: &str) -> bool {
    matches!(
        w,
        "summarize" | "translate" | "list" | "rewrite" | "proofread" | "classify" | "title"
        | "keyword" | "critique" | "analyze" | "write" | "outline" | "extract" | "simplify"
        | "expand" | "elaborate" | "shorten" | "sentiment" | "compare" | "reply" | "example"
        | "examples" | "quiz" | "poem" | "haiku" | "joke" | "tweet" | "essay" | "email" | "code"
        | "implement" | "test" | "tests" | "debug" | "refactor" | "optimize"
        | "calculate" | "estimate" | "predict" | "format" | "table" | "json"
    )
}

/// Negation cues (after apostrophe handling: "don't" arrives as "don't").
#[rustfmt::skip]
pub fn is_negation(w: &str) -> bool {
    matches!(
        w,
        "not" | "no" | "never" | "none" | "nobody" | "nothing" | "nowhere" | "neither" | "nor"
        | "without" | "cannot" | "cant" | "dont" | "doesnt" | "didnt" | "isnt" | "arent" | "wasnt"
        | "werent" | "wont" | "wouldnt" | "shouldnt" | "couldnt" | "havent" | "hasnt" | "hadnt"
        | "mustnt" | "neednt" | "lack" | "lacks" | "lacking"
    ) || w.ends_with("n't")
}

/// An antonym axis. `strict`: having a word of the axis on one side only already makes the
/// requests different ("flights from X" vs "flights to X"); otherwise only opposite words
/// disagree ("best way" vs no adjective is fine, "best" vs "worst" is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Axis {
    pub name: &'static str,
    pub strict: bool,
}

const fn strict(name: &'static str) -> Axis {
    Axis { name, strict: true }
}
const fn soft(name: &'static str) -> Axis {
    Axis {
        name,
        strict: false,
    }
}

/// The antonym axis of a direction / comparison word and the side (+1 / -1) it is on.
#[rustfmt::skip]
pub fn direction(w: &str) -> Option<(Axis, i8)> {
    use std::cmp::Ordering::*;
    let (axis, side) = match w {
        "from" => (strict("from"), Greater),
        "before" | "prior" | "earlier" | "previously" | "pre" | "until" | "till" => {
            (strict("time"), Less)
        }
        "after" | "later" | "since" | "afterwards" | "afterward" | "post" => {
            (strict("time"), Greater)
        }
        "more" | "increase" | "increases" | "increased" | "increasing" | "raise" | "raising"
        | "rise" | "rising" | "grow" | "growing" | "gain" | "higher" | "greater" | "boost"
        | "maximize" | "maximise" | "plus" | "add" | "adding" | "append" | "insert" | "include"
        | "including" => (strict("amount"), Greater),
        "less" | "fewer" | "decrease" | "decreases" | "decreased" | "decreasing" | "reduce"
        | "reduces" | "reducing" | "reduction" | "lower" | "lowering" | "shrink" | "decline"
        | "fall" | "falling" | "minimize" | "minimise" | "minus" | "remove" | "removing"
        | "delete" | "deleting" | "deletion" | "erase" | "exclude" | "excluding" | "except"
        | "drop" | "subtract" => (strict("amount"), Less),
        "max" | "maximum" | "most" | "highest" | "largest" | "biggest" | "greatest" | "longest"
        | "top" | "peak" => (strict("extreme"), Greater),
        "min" | "minimum" | "least" | "lowest" | "smallest" | "shortest" | "bottom" => {
            (strict("extreme"), Less)
        }
        "up" | "upward" | "upwards" | "upper" | "uppercase" => (strict("vertical"), Greater),
        "down" | "downward" | "downwards" | "lowercase" => (strict("vertical"), Less),
        "inside" | "inner" | "internal" | "inbound" | "input" | "import" | "importing"
        | "incoming" => (strict("inout"), Greater),
        "outside" | "outer" | "external" | "outbound" | "output" | "export" | "exporting"
        | "outgoing" | "out" => (strict("inout"), Less),
        "enable" | "enabled" | "enabling" | "activate" | "activated" => {
            (strict("onoff"), Greater)
        }
        "disable" | "disabled" | "disabling" | "deactivate" | "deactivated" | "off" => {
            (strict("onoff"), Less)
        }
        "start" | "starting" | "begin" | "beginning" | "launch" | "open" | "opening"
        | "install" | "installing" | "login" | "connect" | "connecting" | "mount" => {
            (strict("start"), Greater)
        }
        "stop" | "stopping" | "end" | "ending" | "finish" | "quit" | "exit" | "close"
        | "closing" | "shutdown" | "shut" | "terminate" | "kill" | "uninstall" | "uninstalling"
        | "logout" | "disconnect" | "unmount" => (strict("start"), Less),
        "sell" | "selling" | "sold" => (strict("trade"), Less),
        "send" | "sending" | "sent" | "upload" | "uploading" | "push" | "pushing" => {
            (strict("transfer"), Greater)
        }
        "receive" | "receiving" | "received" | "download" | "downloading" | "pull" | "pulling"
        | "fetch" => (strict("transfer"), Less),
        "encode" | "encoding" | "encrypt" | "encryption" | "compress" | "compression"
        | "serialize" | "zip" | "lock" | "locking" | "hash" => (strict("codec"), Greater),
        "decode" | "decoding" | "decrypt" | "decryption" | "decompress" | "deserialize"
        | "unzip" | "unlock" | "unlocking" => (strict("codec"), Less),
        "ascending" | "asc" => (strict("sort"), Greater),
        "descending" | "desc" => (strict("sort"), Less),
        "north" | "northern" => (strict("ns"), Greater),
        "south" | "southern" => (strict("ns"), Less),
        "east" | "eastern" => (strict("ew"), Greater),
        "west" | "western" => (strict("ew"), Less),
        "hot" | "hotter" | "warm" | "warmer" | "heat" | "heating" => (strict("temp"), Greater),
        "cold" | "colder" | "cool" | "cooler" | "cooling" | "freeze" | "freezing" => {
            (strict("temp"), Less)
        }
        "big" | "bigger" | "large" | "larger" | "huge" => (strict("size"), Greater),
        "small" | "smaller" | "tiny" => (strict("size"), Less),
        "new" | "newer" | "newest" | "latest" | "recent" | "future" | "next" | "upcoming"
        | "modern" => (strict("age"), Greater),
        "old" | "older" | "oldest" | "earliest" | "past" | "previous" | "ancient" | "legacy" => {
            (strict("age"), Less)
        }
        "first" | "initial" | "firstly" => (strict("order"), Less),
        "last" | "final" | "lastly" | "finally" => (strict("order"), Greater),
        "win" | "won" | "winning" | "victory" | "winner" => (strict("outcome"), Greater),
        "lose" | "lost" | "losing" | "loss" | "defeat" | "loser" => (strict("outcome"), Less),
        "pass" | "passed" | "succeed" | "success" | "successful" | "accept" | "accepted"
        | "approve" | "approved" | "allow" | "allowed" | "permit" | "true" | "valid" => {
            (strict("verdict"), Greater)
        }
        "fail" | "failed" | "failure" | "failing" | "reject" | "rejected" | "deny" | "denied"
        | "block" | "blocked" | "forbid" | "forbidden" | "false" | "invalid" => {
            (strict("verdict"), Less)
        }
        "male" | "man" | "men" | "boy" | "boys" | "masculine" => (strict("gender"), Greater),
        "female" | "woman" | "women" | "girl" | "girls" | "feminine" => (strict("gender"), Less),
        "horizontal" | "horizontally" => (strict("orientation"), Greater),
        "vertical" | "vertically" => (strict("orientation"), Less),
        "left" => (soft("side"), Less),
        "rightward" => (soft("side"), Greater),
        "forward" | "forwards" => (soft("heading"), Greater),
        "backward" | "backwards" | "reverse" | "back" => (soft("heading"), Less),
        "above" | "over" | "exceed" | "exceeds" | "exceeding" | "beyond" => {
            (soft("threshold"), Greater)
        }
        "below" | "under" | "beneath" | "underneath" => (soft("threshold"), Less),
        "good" | "better" | "best" | "great" | "excellent" | "advantage" | "advantages" | "benefit"
        | "benefits" | "pro" | "pros" | "upside" | "upsides" | "positive" | "strength"
        | "strengths" => (soft("quality"), Greater),
        "worse" | "worst" | "bad" | "poor" | "disadvantage" | "disadvantages" | "drawback"
        | "drawbacks" | "con" | "cons" | "downside" | "downsides" | "negative" | "weakness"
        | "weaknesses" | "risk" | "risks" => (soft("quality"), Less),
        "fast" | "faster" | "fastest" | "quick" | "quicker" | "quickly" | "rapid" | "speed" => {
            (soft("speed"), Greater)
        }
        "slow" | "slower" | "slowest" | "slowly" => (soft("speed"), Less),
        "long" | "longer" | "lengthy" => (soft("length"), Greater),
        "short" | "shorter" | "brief" | "briefly" | "concise" => (soft("length"), Less),
        "cheap" | "cheaper" | "cheapest" | "inexpensive" | "affordable" => (soft("cost"), Less),
        "expensive" | "pricier" | "costly" => (soft("cost"), Greater),
        _ => return None,
    };
    Some((axis, if side == Greater { 1 } else { -1 }))
}

/// Words that relate the content words on either side of them in a fixed order:
/// "convert X to Y", "X bigger than Y", "flights from X to Y".
pub fn is_relation_marker(w: &str) -> bool {
    matches!(
        w,
        "to" | "into" | "than" | "vs" | "versus" | "from" | "over" | "instead" | "per" | "onto"
    )
}

/// Value of a number word.
#[rustfmt::skip]
pub fn number_word(w: &str) -> Option<f64> {
    Some(match w {
        "zero" => 0.0,
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" | "dozen" => 12.0,
        "thirteen" => 13.0,
        "fourteen" => 14.0,
        "fifteen" => 15.0,
        "sixteen" => 16.0,
        "seventeen" => 17.0,
        "eighteen" => 18.0,
        "nineteen" => 19.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "seventy" => 70.0,
        "eighty" => 80.0,
        "ninety" => 90.0,
        "hundred" => 100.0,
        "thousand" => 1e3,
        "million" => 1e6,
        "billion" => 1e9,
        "trillion" => 1e12,
        "half" => 0.5,
        "twice" | "double" => 2.0,
        "triple" | "thrice" => 3.0,
        _ => return None,
    })
}

/// Canonical unit for a unit word or abbreviation following (or glued to) a number.
#[rustfmt::skip]
pub fn unit(w: &str) -> Option<&'static str> {
    Some(match w {
        "%" | "percent" | "pct" | "percentage" => "%",
        "$" | "usd" | "dollar" | "dollars" | "bucks" => "usd",
        "€" | "eur" | "euro" | "euros" => "eur",
        "£" | "gbp" | "sterling" => "gbp",
        "¥" | "jpy" | "yen" => "jpy",
        "₹" | "inr" | "rupee" | "rupees" => "inr",
        "kg" | "kgs" | "kilogram" | "kilograms" | "kilo" | "kilos" => "kg",
        "g" | "gram" | "grams" | "gr" => "g",
        "mg" | "milligram" | "milligrams" => "mg",
        "lb" | "lbs" | "pound" | "pounds" => "lb",
        "oz" | "ounce" | "ounces" => "oz",
        "km" | "kms" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => "km",
        "m" | "meter" | "meters" | "metre" | "metres" => "m",
        "cm" | "centimeter" | "centimeters" | "centimetre" | "centimetres" => "cm",
        "mm" | "millimeter" | "millimeters" | "millimetre" | "millimetres" => "mm",
        "mi" | "mile" | "miles" => "mi",
        "ft" | "foot" | "feet" => "ft",
        "inch" | "inches" => "in",
        "yd" | "yard" | "yards" => "yd",
        "l" | "liter" | "liters" | "litre" | "litres" => "l",
        "ml" | "milliliter" | "milliliters" | "millilitre" | "millilitres" => "ml",
        "gal" | "gallon" | "gallons" => "gal",
        "c" | "°c" | "celsius" | "centigrade" => "°c",
        "f" | "°f" | "fahrenheit" => "°f",
        "k" | "kelvin" => "k",
        "ms" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "min" | "mins" | "minute" | "minutes" => "min",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "day" | "days" => "day",
        "week" | "weeks" | "wk" | "wks" => "week",
        "month" | "months" | "mo" => "month",
        "year" | "years" | "yr" | "yrs" => "year",
        "kb" | "kilobyte" | "kilobytes" => "kb",
        "mb" | "megabyte" | "megabytes" => "mb",
        "gb" | "gigabyte" | "gigabytes" => "gb",
        "tb" | "terabyte" | "terabytes" => "tb",
        "ghz" => "ghz",
        "mhz" => "mhz",
        "w" | "watt" | "watts" => "w",
        "kw" | "kilowatt" | "kilowatts" => "kw",
        "kwh" => "kwh",
        "v" | "volt" | "volts" => "v",
        "mph" => "mph",
        "kph" | "kmh" => "km/h",
        "am" | "a.m." => "am",
        "pm" | "p.m." => "pm",
        _ => return None,
    })
}

/// Leading currency symbol of a number ("$5").
pub fn currency_symbol(c: char) -> Option<&'static str> {
    Some(match c {
        '$' => "usd",
        '€' => "eur",
        '£' => "gbp",
        '¥' => "jpy",
        '₹' => "inr",
        _ => return None,
    })
}

/// Capitalised words that are ordinary words at the start of a request, not names.
pub fn is_common_capitalized(w: &str) -> bool {
    is_stopword(w)
        || is_generic(w)
        || is_negation(w)
        || direction(w).is_some()
        || synonym(w).is_some()
        || is_task(w)
        || number_word(w).is_some()
        || matches!(
            w,
            "find"
                | "calculate"
                | "convert"
                | "suggest"
                | "name"
                | "check"
                | "look"
                | "set"
                | "put"
                | "take"
                | "keep"
                | "see"
                | "say"
                | "ask"
                | "try"
                | "run"
                | "turn"
                | "pick"
                | "choose"
                | "recommend"
                | "is"
                | "yes"
                | "dear"
                | "note"
                | "ps"
                | "note:"
                | "q"
                | "a"
                | "re"
                | "fw"
                | "fwd"
                | "subject"
                | "question"
        )
}
