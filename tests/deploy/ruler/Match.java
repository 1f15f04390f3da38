// Matches events against EventBridge rule patterns with event-ruler, AWS's open-source matcher
// (the engine EventBridge's own pattern language is defined by).
//
//   java -cp "$(cat cp.txt)" Match.java RULES.json EVENTS.json
//
// RULES.json: {"rule name": pattern, ...}; EVENTS.json: [{"name": ..., "event": {...}}, ...].
// Prints one JSON line per event, in order: {"name": ..., "matches": ["rule name", ...]} (sorted).
// A pattern event-ruler rejects is an error (exit 2), not a non-match.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import software.amazon.event.ruler.Machine;

public final class Match {
  public static void main(String[] args) throws Exception {
    ObjectMapper json = new ObjectMapper();
    Machine machine = new Machine();
    JsonNode rules = json.readTree(new File(args[0]));
    for (Iterator<Map.Entry<String, JsonNode>> it = rules.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> rule = it.next();
      try {
        machine.addRule(rule.getKey(), json.writeValueAsString(rule.getValue()));
      } catch (Exception e) {
        System.err.println("event-ruler rejects the pattern of " + rule.getKey() + ": " + e.getMessage());
        System.exit(2);
      }
    }
    for (JsonNode sample : json.readTree(new File(args[1]))) {
      List<String> matches = new ArrayList<>(machine.rulesForJSONEvent(json.writeValueAsString(sample.get("event"))));
      matches.sort(null);
      ObjectNode out = json.createObjectNode();
      out.put("name", sample.get("name").asText());
      ArrayNode m = out.putArray("matches");
      matches.forEach(m::add);
      System.out.println(json.writeValueAsString(out));
    }
  }
}
