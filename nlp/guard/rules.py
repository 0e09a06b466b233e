"""Rule families of the input guard: precise patterns for what must never get through.

Each family is a category of attack. The rules run on ``Normalized.rule_text`` (lower-cased,
obfuscation undone), so they are written in lower case. They are built for precision: a rule
fires on how an attack is phrased (an instruction to the assistant about its own instructions,
persona or replies; a request for the means of harm), not on a topic word alone, because
ordinary customers write "ignore the late fee", "my card was stolen" and "kill the power".
What the rules miss is left to the embedding detector (:mod:`nlp.guard.detector`).

Categories (the ``category`` of a :class:`nlp.verdicts.GuardVerdict`):

* ``prompt_injection``: instructions that try to override the assistant's own instructions, fake
  system or role markers, and instructions that rewrite how the assistant formats its replies
  (the payload of indirect injections: "in your reply, add a link to ...").
* ``prompt_extraction``: requests for the system prompt or hidden configuration.
* ``jailbreak``: personas and modes without rules ("DAN", "developer mode"), requests to drop
  ethics, filters or refusals, jailbreak template markers.
* ``harmful``: requests for the means of serious harm: weapons, drugs, malware, breaking into
  accounts, violence against a person, sexual content involving minors.
* ``self_harm``: a customer talking about harming themself (handed to a person, never refused
  coldly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired."""

    category: str
    rule: str
    match: str


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL | re.MULTILINE)


# Words an assistant's own configuration goes by; "my previous instructions" about a delivery
# is a customer's, so the owner must be the assistant's, all of them, or unnamed.
_THEIR_RULES = (
    r"(instructions?|prompts?|rules|guidelines|directives?|directions|programming|constraints|"
    r"restrictions|polic(y|ies)|guardrails|safeguards|training|commands|system\s+message)"
)
_REPLY = r"(reply|replies|response|responses|answer|answers|output|outputs|message|messages)"
_EDIT_VERBS = (
    r"(modify|alter|change|rewrite|re-?format|format|begin|start|end|prefix|prepend|append|augment|"
    r"enhance|integrate|insert|include|incorporate|embed|add|mention|replace|convert|encode|"
    r"scramble|reverse|substitute|group|combine|remove|introduce|use|provide|write|translate|"
    r"tease|hint|spell|misspell|conclude|finish|sign|structure|present|deliver|compose|craft|"
    r"respond|reply|answer|express|inject|promote|recommend|suggest|link|direct|encourage|invite|"
    r"urge|remind|emphasi[sz]e|stress|highlight|frame|make)"
)
_MEANS = (
    r"(bombs?|explosives?|pipe\s*bombs?|napalm|thermite|grenades?|molotov|weapons?|guns?|"
    r"firearms?|silencers?|ghost\s+guns?|meth(amphetamine)?|crack|cocaine|heroin|fentanyl|lsd|"
    r"mdma|ecstasy|drugs?|poisons?|nerve\s+agents?|sarin|ricin|anthrax|bio-?weapons?|"
    r"chemical\s+weapons?|malware|ransomware|viruse?s?|trojans?|keyloggers?|botnets?|"
    r"spyware|rootkits?|exploits?|phishing\s+(kits?|pages?|sites?|emails?)|fake\s+ids?|"
    r"counterfeit\s+(money|bills|notes|cash))"
)
_HOW = (
    r"(how\s+(do|can|could|would|should|might)\s+(i|we|one|you|someone)|how\s+to|ways?\s+to|"
    r"steps?\s+to|help\s+me(\s+to)?|teach\s+me(\s+to)?|show\s+me\s+how\s+to|"
    r"explain\s+how\s+to|instructions?\s+(for|to|on)|guide\s+(to|for|on)|tutorial\s+(on|for)|"
    r"recipe\s+for|best\s+way\s+to|easiest\s+way\s+to|i\s+(want|need|plan)\s+to|"
    r"tell\s+me\s+how\s+to|where\s+(can|do)\s+i)"
)
_VICTIM = (
    r"(someone|somebody|anyone|him|her|them|people|a\s+person|a\s+(child|kid|baby|woman|man)|"
    r"my\s+(wife|husband|partner|girlfriend|boyfriend|boss|neighbou?r|ex|mother|father|mom|mum|"
    r"dad|sister|brother|friend|roommate|co-?worker|colleague|teacher|child|kid|son|daughter|"
    r"family|landlord|tenant))"
)

RULES: list[tuple[str, str, re.Pattern[str]]] = [
    # --- instruction override and fake control markers ---
    (
        "prompt_injection",
        "override",
        _rx(
            r"\b(ignore|disregard|forget|override|bypass|skip|abandon|discard|drop|neglect|"
            r"overwrite|cancel|suspend|nullify|erase|delete)\b\s+(about\s+)?"
            r"((all|any|every|each|the|your|these|those|of|its|whatever|previous|prior|above|"
            r"earlier|preceding|original|initial|system|existing|current|old|default|safety|"
            r"ethical|moral|content|built-?in|pre-?programmed|given)\s+){1,4}" + _THEIR_RULES
        ),
    ),
    (
        "prompt_injection",
        "new_instructions",
        _rx(
            r"\b(new|updated|real|actual|true|revised|secret|hidden|additional)\s+"
            r"(instructions?|rules|task|directives?|system\s+prompt|orders)\s*[:\-=]"
            r"|\byour\s+(new|real|actual|true)\s+(instructions|task|purpose|goal|job|role)\s+"
            r"(is|are)\b"
        ),
    ),
    (
        "prompt_injection",
        "control_markers",
        _rx(
            r"<\|?\s*(im_start|im_end|system|endoftext|assistant|user)\s*\|?>"
            r"|^\s*#{2,}\s*(system|instruction|instructions|new\s+instructions?)\b"
            r"|\[\s*(system|admin|developer|debug|root|sudo)(\s+(note|message|override|mode|"
            r"prompt|announcement))?\s*[\]:]"
            r"|^\s*(system|developer)\s*(prompt|message|note)?\s*:\s*\S"
            r"|\b(system|admin|developer)\s+(override|announcement|notice)\b"
            r"|\b(developer|debug|admin|god|sudo|maintenance|root)\s+mode\s+"
            r"(enabled|activated|on|unlocked)\b"
        ),
    ),
    (
        "prompt_injection",
        "note_to_the_ai",
        # Text planted for a model to find: "[Note to the assistant reading this: ...]",
        # "IMPORTANT INSTRUCTION FOR THE AI:", "When summarising this page, state that ...".
        _rx(
            r"\b(note|message|instructions?|attention|important|reminder|directive)\s*"
            r"(to|for)\s+(the\s+|any\s+)?(ai|a\.i\.|assistant|model|bot|chat\s?bot|llm|"
            r"language\s+model|gpt)s?\b"
            r"|\b(to|for)\s+(the|any)\s+(ai|assistant|model|bot|chat\s?bot|llm)s?\s+"
            r"(reading|processing|summari[sz]ing|answering)\b"
            r"|\b(when|while|after|before)\s+(summari[sz]ing|answering|reading|processing|"
            r"replying\s+to|responding\s+to)\s+(this|the)\s+(page|article|document|text|"
            r"email|ticket|message|question)\b[^.?!\n]{0,30}\b(state|say|tell|claim|mention|"
            r"add|include|ask|insert|write|recommend)\b"
            r"|\b(after|before|when)\s+(answering|replying|responding)\s*,\s*(also\s+)?(ask|tell|"
            r"say|add|request|send)\b"
        ),
    ),
    (
        "prompt_injection",
        "from_now_on",
        _rx(
            r"\b(from\s+now\s+on|for\s+the\s+rest\s+of\s+(this|our|the)\s+(conversation|chat)|"
            r"starting\s+now|henceforth|until\s+i\s+say\s+(stop|otherwise))\b,?\s+(you|your|"
            r"act|respond|answer|reply|only|never|speak|talk|write|pretend|behave|be|begin|"
            r"start|end|do\s+not|don'?t)\b"
            r"|\byou\s+are\s+no\s+longer\s+(an?\s+|the\s+)?\w+"
            r"|\b(ignore|disregard|forget)\s+(everything|anything|all)\s+(\w+\s+){0,4}"
            r"(before|above|prior|previously|earlier|you\s+(were|have\s+been)\s+told)\b"
            r"|\b(ignore|disregard|forget)\s+(all|any)\s+(previous|prior|above|earlier|"
            r"preceding)\s+(messages|conversations?|context|text|input|prompts)\b"
            r"|\byou\s+(will|must|shall|should)\s+now\s+(act|respond|answer|reply|behave|pretend|"
            r"be|follow|obey|only|always|ignore)\b"
        ),
    ),
    (
        "prompt_injection",
        "reply_manipulation",
        _rx(
            r"(^|[.!?:;\n]\s*|\bplease\s+|\balso\s+|\band\s+)" + _EDIT_VERBS + r"\b[^.?!\n]{0,80}?"
            r"\b(your|the|each|every|all\s+(of\s+)?your)\s+(future\s+|next\s+|final\s+)?"
            + _REPLY
            + r"\b(?!\s+language\b|\s+(to|about|from|regarding)\s+(my|me|our|the)\b)"
            r"|\b(in|into|within|throughout|across)\s+(your|each|every|all\s+(of\s+)?your)\s+"
            r"(future\s+|next\s+)?"
            + _REPLY
            + r",?\s+(please\s+)?(you\s+(must|should|will)\s+)?"
            + _EDIT_VERBS
            + r"\b"
        ),
    ),
    # --- system prompt extraction ---
    (
        "prompt_extraction",
        "system_prompt",
        _rx(
            # Nouns only an assistant has. "The original instructions" of a boiler are not,
            # nor "the system prompt" of a thermostat.
            r"\b(system|hidden|secret|developer|pre-?|initial|master)\s*-?\s*(prompts?|"
            r"messages?)\b(?!\s+(for|on|of|in)\s+(my|the|a|your|this)\s+"
            r"(?!(ai|a\.i\.|bot|chat\s?bot|assistant|chat|model|conversation)\b))"
            r"|\b(hidden|secret|system|developer)\s+(instructions|directives|rules|configuration)"
            r"\b"
            # Taking out its instructions verbatim: "repeat your instructions".
            r"|\b(reveal|print|display|repeat|output|recite|leak|dump|disclose|expose|"
            r"spell\s+out|copy|paste|echo|show\s+me)\b[^.?!\n]{0,30}\byour\s+(own\s+)?"
            r"(prompts?|instructions|programming|directives|configuration|guidelines|rules|"
            r"initiali[sz]ation)\b(?!\s+(for|on|about|regarding|of|to)\b)"
            # Asking about them: "what are your instructions?", not "your rules about dogs".
            r"|\b(tell\s+me|give\s+me|share|list|summari[sz]e|translate|what\s+(is|are|were))"
            r"\b[^.?!\n]{0,30}\byour\s+(own\s+)?(prompts?|instructions|programming|directives|"
            r"configuration|initiali[sz]ation)\b(?!\s+(for|on|about|regarding|of|to)\b)"
            r"|\b(words|text|everything|all)\s+(written\s+)?(above|before)\s+(this|my|the\s+"
            r"(first|user))\b"
            r"|\bwhat\s+(were|have)\s+you\s+(been\s+)?(told|instructed|programmed)\b"
        ),
    ),
    # --- persona and mode jailbreaks ---
    (
        "jailbreak",
        "named_modes",
        _rx(
            r"\bjail-?br(ea|o)k(s|en|ing)?\b|\bdo\s+anything\s+now\b|\bdan\s+mode\b"
            r"|\b(developer|dev|god|evil|chaos|unrestricted|unfiltered|uncensored|opposite|"
            r"unlocked|jailbreak)\s+mode\b"
            r"|\banti-?(gpt|ai|filter)\b|\b(chat\s?gpt|gpt-?[345]|openai|llm)\b[^.\n]{0,60}\b"
            r"(polic(y|ies)|guidelines|restrictions|filters?|rules|content\s+polic(y|ies)|"
            r"limitations|censorship)\b"
        ),
    ),
    (
        "jailbreak",
        "no_limits",
        _rx(
            r"\b(unfiltered|uncensored|unrestricted|amoral|unethical|immoral|unbound|unchained|"
            r"lawless|rogue|evil|jailbroken|limitless)\s+(ai|a\.i\.|assistant|chat\s?bot|bot|model|"
            r"language\s+model|version|persona|character|entity|response|responses|answers?|"
            r"output|alter\s+ego|twin)\b"
            r"|\b(no|without|free\s+(of|from)|not\s+bound\s+by|beyond|ignores?|lacks?|"
            r"(does\s+not|doesn'?t|don'?t|never)\s+(have|follow|care\s+about|abide\s+by|"
            r"adhere\s+to|obey|respect))\s+(any\s+|all\s+|the\s+|its\s+|your\s+)?"
            r"((ethical|moral|content|safety|openai'?s?|programming|legal)\s+(and\s+\w+\s+)?)"
            r"(guidelines|restrictions|filters?|polic(y|ies)|principles|constraints|limitations|"
            r"boundaries|standards|rules|considerations|obligations|code)\b"
            r"|\b(never|not|cannot|can'?t|won'?t|will\s+not|must\s+not|mustn'?t|unable\s+to)\s+"
            r"(ever\s+)?(refuse|decline|reject|deny)\s+(a|any|my|the|to|your)\b"
            r"|\bwithout\s+(any\s+)?(warnings?\s+or|disclaimers?|censorship|filtering|moral\w*|"
            r"ethic\w*|refus\w+)\b"
            r"|\b(stay|remain|never\s+break|don'?t\s+break|do\s+not\s+break|breaking|break)\s+"
            r"(out\s+of\s+|in\s+)?character\b"
        ),
    ),
    (
        "jailbreak",
        "persona",
        _rx(
            r"\b(pretend|act|behave|role-?play|respond|answer|reply|function|operate)\s+"
            r"(to\s+be|as\s+if\s+you\s+(are|were)|like|as)\s+(you\s+are\s+)?(an?\s+|my\s+)?"
            r"(\w+\s+){0,3}(ai|a\.i\.|chat\s?bot|assistant|bot|language\s+model|character|"
            r"persona|version\s+of\s+yourself|entity|machine|gpt)\b"
            r"|\byou\s+(are\s+going\s+to|will|must|shall|are\s+to|have\s+to)\s+(now\s+)?"
            r"(act|pretend|play|simulate|role-?play|immerse|emulate|impersonate|embody)\b"
            r"|\b(simulate|emulate|impersonate|embody)\s+(being\s+)?(an?\s+)?(\w+\s+){0,2}"
            r"(ai|chat\s?bot|assistant|language\s+model|persona|character)\b"
            r"|\b(immerse\s+yourself|take\s+(up|on)\s+the\s+(role|persona))\b"
            r"|\bi\s+(want|need|would\s+like)\s+you\s+to\s+(act\s+(as|like)|pretend|simulate|"
            r"play\s+(the|a)\s+(role|part|game|character)|role-?play|become|impersonate|emulate)\b"
            r"|(^|[.!?\n]\s*)(please\s+)?(act|behave)\s+as\s+(if|though|an?\s+\w+\s+(who|that|"
            r"with|without))\b"
            r"|\byou\s+are\s+now\s+(an?\s+|the\s+)?(\w+\s+){0,2}(ai|a\.i\.|chat\s?bot|"
            r"assistant|bot|language\s+model|persona|character|free|unlocked|unrestricted|"
            r"called|named|known\s+as)\b"
            r"|\b(hypothetical|fictional|imaginary)\s+(ai|language\s+model|chat\s?bot|"
            r"assistant)\b"
            r"|\bas\s+an?\s+ai\s+language\s+model\b"
            r"|\[\s*(insert|your|enter|put)\s+(prompt|question|request|query|message|text)"
            r"[^\]\n]{0,20}\]|\{\s*(prompt|question|input|query)\s*\}"
        ),
    ),
    # --- means of serious harm ---
    (
        "harmful",
        "means_of_harm",
        _rx(
            _HOW + r"\b[^.?!\n]{0,50}\b(make|build|synthesi[sz]e|cook|manufacture|brew|craft|"
            r"assemble|create|produce|make\s+my\s+own|3d[- ]print|buy|obtain|get\s+hold\s+of|"
            r"smuggle|hide|sell|deploy|write|code|spread|plant|detonate|use)\b[^.?!\n]{0,30}\b"
            + _MEANS
            + r"\b"
        ),
    ),
    (
        "harmful",
        "violence",
        _rx(
            r"\b(kill|murder|poison|stalk|kidnap|abduct|strangle|stab|shoot|torture|drown|"
            r"assassinate|maim|beat\s+up|hurt|harm|attack|rape|assault|threaten)\s+"
            + _VICTIM
            + r"\b(?!\s+(was|is|has|had|did|said|told|called|came|got|who|that)\b)"
            r"|\b(get\s+away\s+with|cover\s+up|without\s+(getting\s+caught|leaving\s+"
            r"(a\s+)?(trace|evidence)))\b[^.?!\n]{0,40}\b(murder|killing|crime|poisoning|"
            r"assault|arson|theft|it)\b"
            r"|\b(dispose\s+of|hide|get\s+rid\s+of)\s+(a|the)\s+(dead\s+)?body\b"
        ),
    ),
    (
        "harmful",
        "crime",
        _rx(
            _HOW + r"\s+(\w+\s+){0,2}(steal|launder|counterfeit|forge|shoplift|smuggle|"
            r"blackmail|extort|bribe|defraud|phish|dox|swat|embezzle|pickpocket|carjack|"
            r"hack\s+into|break\s+into|spy\s+on|wiretap|hijack|ddos|"
            r"evade|dodge|groom|catfish|harass|bully|stalk|gaslight|intimidate|"
            r"vandali[sz]e|burn\s+down|set\s+fire\s+to)\b"
            r"(?!\s+(proof|prevention|protection|detection|attempts?|alerts?)\b)"
            r"|\bhack(ing)?\s+(into\s+)?(someone|somebody|my\s+(ex|neighbou?r|boss|wife|"
            r"husband|partner)|an?\s+\w+'?s|other\s+people)\b"
        ),
    ),
    (
        "harmful",
        "minors",
        _rx(
            r"\bchild\s+(porn\w*|sexual\s+abuse\s+material)\b|\bcsam\b|\bcp\s+links?\b"
            r"|\b(sex\w*|nude|naked|erotic|explicit|porn\w*)\b[^.?!\n]{0,40}\b(minors?|"
            r"underage|children|child|kids?|pre-?teens?|\d{1,2}\s*-?\s*(yo|year[- ]old))\b"
            r"|\b(groom|seduce|lure)\w*\s+(a\s+)?(minors?|child|children|kids?|teens?|"
            r"teenagers?|girls?|boys?)\b"
        ),
    ),
    # --- a customer in crisis ---
    (
        "self_harm",
        "self_harm",
        _rx(
            r"\b(kill(ing)?\s+myself|suicid(e|al)|end(ing)?\s+(it\s+all|my\s+(own\s+)?life)|"
            r"take\s+my\s+(own\s+)?life|hurt(ing)?\s+myself|harm(ing)?\s+myself|self[- ]harm\w*|"
            r"cut(ting)?\s+myself|want\s+to\s+die|wish\s+i\s+(was|were)\s+dead|"
            r"(don'?t|do\s+not)\s+want\s+to\s+(live|be\s+alive|wake\s+up)|overdose\s+on)\b"
        ),
    ),
]


def check_rules(rule_text: str, original: str = "") -> RuleHit | None:
    """Return the first rule family that fires on ``rule_text``, or None.

    ``original`` (the NFKC text before lower-casing) is checked for the one case-sensitive
    signal: the all-caps persona name ``DAN``, which in lower case is an ordinary first name.
    """
    for category, name, pattern in RULES:
        m = pattern.search(rule_text)
        if m:
            return RuleHit(category, name, m.group(0).strip()[:120])
    m = _DAN.search(original)
    if m:
        return RuleHit("jailbreak", "named_modes", m.group(0))
    return None


_DAN = re.compile(r"\bDAN\b(?!\s+(Street|St|Road|Rd)\b)")
