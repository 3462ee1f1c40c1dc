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
            | "through" | "during" | "within" | "across" | "around" | "against" | "than"
            | "instead" | "rather" | "etc" | "eg" | "ie" | "yet" | "even" | "still"
            | "already" | "ever" | "something" | "anything" | "everything" | "someone" | "anyone"
            | "everyone" | "somebody" | "anybody" | "whatever" | "whichever" | "whoever" | "one's"
            | "oneself" | "ones" | "i'm" | "i've" | "i'd" | "i'll" | "you're" | "you've" | "we're"
            | "we've" | "they're" | "they've"
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
        | "go" | "able" | "guys" | "hi" | "hello" | "hey" | "thanks" | "thank" | "okay"
        | "ok" | "sure" | "text" | "article" | "document" | "passage" | "content" | "piece"
        | "following" | "below" | "above" | "provided" | "given" | "attached" | "here's" | "heres"
        | "recommended" | "recommend" | "suggest" | "advice" | "advise" | "anyway" | "currently"
        | "now" | "today" | "specific" | "specifically" | "particular" | "good" | "best" | "better"
        | "quick" | "quickly" | "fast" | "overview" | "someone's" | "kind" | "type" | "bit"
        | "little" | "lot" | "lots" | "command" | "syntax" | "amount"
        | "quantity" | "approach" | "technique" | "find" | "locate" | "indicate" | "indicates"
        | "consider" | "considered" | "location" | "located" | "situated" | "turn" | "try"
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
        | "gist" | "condense" | "synopsis" | "summarize" | "distill" | "distil" | "précis"
        | "precis"
        // The same request in the languages a summarizing gateway commonly receives.
        | "zusammen" | "zusammenfassen" | "zusammenfassung" | "résume" | "résumez" | "résumer"
        // Not "résumé" (a CV in English) nor Dutch "vat" (VAT, a tax, in English).
        | "resumen" | "resumir" | "resúmeme" | "resuma" | "resumo"
        | "riassumi" | "riassunto" | "riassumere" | "samenvatting" | "samenvatten" => {
            "summarize"
        }
        "translation" | "translating" | "translated" | "translate" => "translate",
        "enumerate" | "bullet" | "bullets" | "bulleted" | "list" | "listing" | "lists" => "list",
        "vs" | "versus" => "compare",
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
        "mistake" | "mistakes" | "error" | "errors" => "error",
        "occur" | "occurs" | "occurred" | "occurring" | "happen" | "happens" | "happened"
        | "happening" => "happen",
        "symptom" | "symptoms" | "sign" | "signs" => "symptom",
        "prevent" | "prevents" | "prevented" | "preventing" | "avoid" | "avoids" | "avoiding" => {
            "avoid"
        }
        "fee" | "fees" => "cost",
        "parcel" | "parcels" | "package" | "packages" => "package",
        "luggage" | "baggage" | "bag" | "bags" | "suitcase" | "suitcases" => "luggage",
        "coworker" | "coworkers" | "colleague" | "colleagues" => "colleague",
        "vacation" | "vacations" | "holiday" | "holidays" => "vacation",
        "beginner" | "beginners" | "novice" | "novices" | "newbie" | "newbies" => "beginner",
        "weigh" | "weighs" | "weight" | "weights" | "weighing" => "weigh",
        "fridge" | "refrigerator" | "refrigerated" | "refrigerate" => "fridge",
        "pc" | "computer" | "computers" => "computer",
        "home" | "house" => "home",
        "news" => "news",
        "world" | "earth" | "planet" | "globe" => "world",
        "nation" | "nations" | "country" | "countries" => "country",
        "config" | "configuration" | "configurations" | "configure" | "configuring"
        | "configured" | "settings" | "setting" => "config",
        "calculate" | "calculating" | "calculated" | "calculation" | "calculations" | "compute"
        | "computing" => "calculate",
        "example" | "examples" => "example",
        "edit" | "edits" | "editing" | "update" | "updating" | "updated" => "change",
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
        "automobile" | "car" | "cars" | "vehicle" | "vehicles" => "car",
        "smartphone" | "phone" | "phones" | "cellphone" => "phone",
        "program" | "programme" | "app" | "application" => "program",
        _ => return None,
    })
}

/// Canonical words that name the task of a request (its kind of output): two requests must name
/// the same ones ("summarize" never answers "translate" or "write a headline").
#[rustfmt::skip]
pub fn is_task(w: &str) -> bool {
    matches!(
        w,
        "summarize" | "translate" | "rewrite" | "proofread" | "classify" | "title"
        | "keyword" | "critique" | "analyze" | "outline" | "extract" | "simplify"
        | "expand" | "elaborate" | "shorten" | "sentiment" | "compare" | "reply" | "example"
        | "examples" | "quiz" | "poem" | "haiku" | "joke" | "tweet" | "essay" | "email" | "code"
        | "implement" | "test" | "tests" | "debug" | "refactor" | "optimize"
        | "estimate" | "predict" | "format" | "table" | "json"
    ) || is_soft_task(w)
}

/// Task words that one side may leave implicit: "List the seven continents" asks what "What are
/// the seven continents?" asks, "Write a haiku about rain" what "haiku: rain" asks. When both
/// sides name tasks, they must still name the same ones. Not content words.
pub fn is_soft_task(w: &str) -> bool {
    matches!(w, "list" | "write" | "create" | "calculate")
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
        "up" | "upward" | "upwards" | "upper" | "uppercase" => (strict("vertical"), Greater),
        "down" | "downward" | "downwards" | "lowercase" => (strict("vertical"), Less),
        "inside" | "inner" | "internal" | "inbound" | "import" | "importing" | "incoming" => {
            (strict("inout"), Greater)
        }
        "outside" | "outer" | "external" | "outbound" | "export" | "exporting" | "outgoing"
        | "out" => (strict("inout"), Less),
        // "What's the output of ..." asks what "What does ... print?" asks.
        "input" | "inputs" => (soft("io"), Greater),
        "output" | "outputs" => (soft("io"), Less),
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
        "hot" | "hotter" | "hottest" | "warm" | "warmer" | "warmest" | "heat" | "heating" => {
            (strict("temp"), Greater)
        }
        "cold" | "colder" | "coldest" | "cool" | "cooler" | "coolest" | "cooling" | "freeze"
        | "freezing" => (strict("temp"), Less),
        "new" | "newer" | "newest" | "latest" | "recent" | "future" | "next" | "upcoming"
        | "modern" => (strict("age"), Greater),
        "old" | "older" | "oldest" | "earliest" | "past" | "previous" | "ancient" | "legacy" => {
            (strict("age"), Less)
        }
        "first" | "initial" | "firstly" => (strict("order"), Less),
        "last" | "final" | "lastly" | "finally" => (strict("order"), Greater),
        "win" | "won" | "winning" | "victory" | "winner" => (strict("outcome"), Greater),
        "lose" | "lost" | "losing" | "loss" | "defeat" | "loser" => (strict("outcome"), Less),
        // "Is X allowed?" asks what "Can I X?" asks; "allowed" / "blocked" still disagree.
        "pass" | "passed" | "succeed" | "success" | "successful" | "accept" | "accepted"
        | "approve" | "approved" | "allow" | "allowed" | "permit" | "true" | "valid" => {
            (soft("verdict"), Greater)
        }
        "fail" | "failed" | "failure" | "failing" | "reject" | "rejected" | "deny" | "denied"
        | "block" | "blocked" | "forbid" | "forbidden" | "false" | "invalid" => {
            (soft("verdict"), Less)
        }
        "male" | "man" | "men" | "boy" | "boys" | "masculine" => (strict("gender"), Greater),
        "female" | "woman" | "women" | "girl" | "girls" | "feminine" => (strict("gender"), Less),
        "horizontal" | "horizontally" => (strict("orientation"), Greater),
        "vertical" | "vertically" => (strict("orientation"), Less),
        // "the right way" is framing, "turn right" is not "turn left".
        "left" => (soft("side"), Less),
        "right" | "rightward" => (soft("side"), Greater),
        "forward" | "forwards" => (soft("heading"), Greater),
        "backward" | "backwards" | "reverse" | "back" => (soft("heading"), Less),
        "above" | "over" | "exceed" | "exceeds" | "exceeding" | "beyond" => {
            (soft("threshold"), Greater)
        }
        "below" | "under" | "beneath" | "underneath" => (soft("threshold"), Less),
        _ => return None,
    };
    Some((axis, if side == Greater { 1 } else { -1 }))
}

/// A gradable adjective: the scales it can measure ("highest" is a height or an amount,
/// "tallest" only a height), the end of them it points to, and whether naming it on one side only
/// already changes the question. Superlatives and comparatives do ("the tallest waterfall" is
/// not "a waterfall"); plain adjectives on a soft scale do not ("a quick way to ..."). "most" and
/// "least" measure any scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grade {
    pub scales: &'static [&'static str],
    pub side: i8,
    pub strict: bool,
}

/// Every scale (most, least, max, min, top ...).
pub const ANY_SCALE: &[&str] = &["*"];

#[rustfmt::skip]
pub fn grade(w: &str) -> Option<Grade> {
    const SIZE: &[&str] = &["size", "amount"];
    const HIGH: &[&str] = &["height", "amount"];
    const TALL: &[&str] = &["height"];
    const GREAT: &[&str] = &["amount", "quality"];
    const SHORT: &[&str] = &["length", "height", "duration"];
    const LONG: &[&str] = &["length", "duration"];
    let g = |scales, side, strict| Some(Grade { scales, side, strict });
    match w {
        "most" | "max" | "maximum" | "top" | "peak" => g(ANY_SCALE, 1, true),
        "least" | "min" | "minimum" | "bottom" => g(ANY_SCALE, -1, true),
        "big" | "large" | "huge" | "giant" | "massive" | "bigger" | "larger" | "biggest"
        | "largest" => g(SIZE, 1, true),
        "small" | "tiny" | "smaller" | "smallest" | "tiniest" => g(SIZE, -1, true),
        "tall" | "taller" | "tallest" => g(TALL, 1, true),
        // The nouns of a scale ask for a measure: "the height of" = "how tall".
        "height" => g(TALL, 1, false),
        "size" => g(SIZE, 1, false),
        "length" => g(LONG, 1, false),
        "depth" => g(&["depth"], 1, false),
        "width" => g(&["width"], 1, false),
        "highest" => g(HIGH, 1, true),
        "lowest" => g(HIGH, -1, true),
        "greatest" => g(GREAT, 1, true),
        "long" | "lengthy" => g(LONG, 1, false),
        "longer" | "longest" => g(LONG, 1, true),
        "short" => g(SHORT, -1, false),
        "shorter" | "shortest" => g(SHORT, -1, true),
        "brief" | "briefly" | "concise" => g(&["length"], -1, false),
        "deep" => g(&["depth"], 1, false),
        "deeper" | "deepest" => g(&["depth"], 1, true),
        "shallow" => g(&["depth"], -1, false),
        "shallower" | "shallowest" => g(&["depth"], -1, true),
        "wide" => g(&["width"], 1, false),
        "wider" | "widest" => g(&["width"], 1, true),
        "narrow" => g(&["width"], -1, false),
        "narrower" | "narrowest" => g(&["width"], -1, true),
        "heavy" => g(&["weight"], 1, false),
        "heavier" | "heaviest" => g(&["weight"], 1, true),
        "lighter" | "lightest" => g(&["weight"], -1, true),
        // "How far is it from A to B?" asks "What's the distance between A and B?".
        "far" | "distance" => g(&["distance"], 1, false),
        "farther" | "further" | "farthest" | "furthest" => g(&["distance"], 1, true),
        "near" => g(&["distance"], -1, false),
        "nearer" | "nearest" | "closer" | "closest" => g(&["distance"], -1, true),
        "strong" => g(&["strength"], 1, false),
        "stronger" | "strongest" => g(&["strength"], 1, true),
        "weak" => g(&["strength"], -1, false),
        "weaker" | "weakest" => g(&["strength"], -1, true),
        "fast" | "quick" | "quickly" | "rapid" | "rapidly" | "speed" | "speedy" => {
            g(&["speed"], 1, false)
        }
        "faster" | "fastest" | "quicker" | "quickest" => g(&["speed"], 1, true),
        "slow" | "slowly" => g(&["speed"], -1, false),
        "slower" | "slowest" => g(&["speed"], -1, true),
        "cheap" | "cheaply" | "inexpensive" | "affordable" => g(&["cost"], -1, false),
        "cheaper" | "cheapest" => g(&["cost"], -1, true),
        "expensive" | "pricey" | "costly" => g(&["cost"], 1, false),
        "pricier" | "priciest" => g(&["cost"], 1, true),
        // "the best way to ..." is how requests are phrased, not a constraint on its own.
        "good" | "better" | "best" | "great" | "excellent" | "ideal" | "optimal" | "advantage"
        | "advantages" | "benefit" | "benefits" | "pro" | "pros" | "upside" | "upsides"
        | "positive" | "strength" | "strengths" => g(&["quality"], 1, false),
        "bad" | "poor" | "disadvantage" | "disadvantages" | "drawback" | "drawbacks" | "con"
        | "cons" | "downside" | "downsides" | "negative" | "weakness" | "weaknesses" | "risk"
        | "risks" => g(&["quality"], -1, false),
        "worse" | "worst" => g(&["quality"], -1, true),
        _ => None,
    }
}

/// Words that give the words around them an ordered role: "convert X to Y", "X bigger than Y",
/// "flights from X to Y", "miles per gallon", "X instead of Y".
pub fn is_relation_marker(w: &str) -> bool {
    matches!(
        w,
        "to" | "into"
            | "onto"
            | "toward"
            | "towards"
            | "than"
            | "from"
            | "over"
            | "instead"
            | "per"
    )
}

/// Auxiliaries that invert with the subject of a question ("do I", "can my landlord").
pub fn is_aux(w: &str) -> bool {
    matches!(
        w,
        "do" | "does"
            | "did"
            | "can"
            | "could"
            | "should"
            | "would"
            | "will"
            | "must"
            | "may"
            | "might"
            | "shall"
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
        "single" => 1.0,
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
        "kbps" => "kbps",
        "mbps" => "mbps",
        "gbps" => "gbps",
        "m²" | "m2" | "sqm" => "m2",
        "ft²" | "ft2" | "sqft" => "ft2",
        // "daily" asks per day, as "a day" / "per day" do.
        "daily" => "day",
        "hourly" => "h",
        "weekly" => "week",
        "monthly" => "month",
        "yearly" | "annually" | "annual" => "year",
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
